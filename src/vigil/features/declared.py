"""A feature file: windowed aggregations a data scientist declares, beside the built-in ones.

The file is YAML, a list of features under ``features``; each is computed online from the
profiles and offline by the point-in-time builder from the same declaration, like the
built-in ones (:mod:`vigil.features.spec`)::

    features:
      - name: terminal_txn_count_1d        # letters, digits, _; not a built-in name
        over: terminal                      # card | user | terminal
        aggregate: count                    # count | sum | mean (of the amounts)
        window: 1d                          # 1h | 1d | 7d | 30d | 90d
        types: [withdrawal]                 # optional: the transaction types that count
        doc: withdrawals at the terminal in the last day

The file is checked as it is loaded, as the rules are: every mistake is reported at once, each
naming the file, the feature and the field (:class:`FeatureFileError`).

>>> declared = load_features('''
... features:
...   - {name: terminal_txn_count_1d, over: terminal, aggregate: count, window: 1d}
...   - {name: card_withdrawn_7d, over: card, aggregate: sum, window: 7d, types: [withdrawal]}
... ''')
>>> [(f.name, f.entity, f.aggregation, f.window, f.categories) for f in declared][1]
('card_withdrawn_7d', 'card', 'sum_amount', '7d', ('withdrawal',))
>>> load_features("features: [{name: card_txn_count_1d, over: shop, aggregate: max}]")
Traceback (most recent call last):
...
vigil.features.declared.FeatureFileError: <text>: 4 mistakes
  features[0] card_txn_count_1d: name: a built-in feature has this name
  features[0] card_txn_count_1d: over: 'shop' is not one of card, user, terminal
  features[0] card_txn_count_1d: aggregate: 'max' is not one of count, sum, mean
  features[0] card_txn_count_1d: window: None is not one of 1h, 1d, 7d, 30d, 90d
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from vigil.features.spec import FEATURE_NAMES, FEATURES, TRANSACTION_TYPES, Feature
from vigil.profiles.windows import WINDOWS

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_ENTITIES = ("card", "user", "terminal")
# The file's words for the aggregations, and the declarations' own.
_AGGREGATES = {"count": "count", "sum": "sum_amount", "mean": "mean_amount"}
_WORDS = {ours: word for word, ours in _AGGREGATES.items()}
_WINDOWS = tuple(name for name, _ in WINDOWS)
_FIELDS = ("name", "over", "aggregate", "window", "types", "doc")


class FeatureFileError(ValueError):
    """A feature file that cannot be used: every mistake in it, each on its own line."""

    def __init__(self, source: str, mistakes: list[str]) -> None:
        self.source = source
        self.mistakes = mistakes
        count = "1 mistake" if len(mistakes) == 1 else f"{len(mistakes)} mistakes"
        super().__init__(f"{source}: {count}\n" + "\n".join(f"  {m}" for m in mistakes))


def load_feature_file(path: Path | str) -> tuple[Feature, ...]:
    """The features a file declares (:func:`load_features` on its text)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FeatureFileError(str(path), [f"cannot be read: {exc}"]) from exc
    return load_features(text, source=str(path))


def load_features(text: str, *, source: str = "<text>") -> tuple[Feature, ...]:
    """The features ``text`` declares, checked; :class:`FeatureFileError` lists every
    mistake."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # As a rule file's: the line yaml stopped at, and its problem, not its context
        # ("while parsing a flow node"), which says where it began looking, not what is wrong.
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise FeatureFileError(where, [f"not YAML: {reason}"]) from exc
    if not isinstance(document, dict) or not isinstance(document.get("features"), list):
        raise FeatureFileError(source, ["features: a list of features is expected"])
    return declared_from(document["features"], source=source)


def declared_from(entries: list[Any], *, source: str) -> tuple[Feature, ...]:
    """The features a list of declarations (a file's ``features``, or what a model card
    kept: :func:`declaration`) declares, checked as a file's are.

    >>> f = load_features("features: [{name: card_sent_1d, over: card, aggregate: sum, "
    ...                   "window: 1d, types: [transfer, payment]}]")[0]
    >>> entry = declaration(f)
    >>> entry["aggregate"], entry["types"]
    ('sum', ['transfer', 'payment'])
    >>> declared_from([declaration(f)], source="a model card") == (f,)
    True
    """
    mistakes: list[str] = []
    out: list[Feature] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        found = _feature(entry, seen)
        where = f"features[{i}]" + (f" {entry.get('name')}" if isinstance(entry, dict) else "")
        if isinstance(found, Feature):
            out.append(found)
        else:
            mistakes += [f"{where}: {m}" for m in found]
    if mistakes:
        raise FeatureFileError(source, mistakes)
    return tuple(out)


def declaration(f: Feature) -> dict[str, Any]:
    """A declared feature in the file's own words (its ``types`` only when it filters, its
    ``doc`` only when it has one): what a model card keeps of the features it was trained on."""
    entry: dict[str, Any] = {
        "name": f.name,
        "over": f.entity,
        "aggregate": _WORDS[f.aggregation],
        "window": f.window,
    }
    if set(f.categories) != set(TRANSACTION_TYPES):
        entry["types"] = list(f.categories)
    if f.doc:
        entry["doc"] = f.doc
    return entry


def differences(trained: Feature, current: Feature) -> list[str]:
    """The fields in which two declarations of one feature compute different values (its
    ``doc`` aside; its types as a set), each as ``field: current (trained: ...)``.

    >>> a, b = load_features("features: [{name: n, over: card, aggregate: count, window: 1d},"
    ...                      " {name: m, over: user, aggregate: count, window: 7d}]")
    >>> differences(a, b)
    ['over: user (trained: card)', 'window: 7d (trained: 1d)']
    """
    was, now = declaration(trained), declaration(current)
    out = []
    for key in ("over", "aggregate", "window", "types"):
        before, after = was.get(key), now.get(key)
        if key == "types":
            before, after = set(before or TRANSACTION_TYPES), set(after or TRANSACTION_TYPES)
        if before != after:
            shown = (
                [",".join(sorted(v)) for v in (after, before)]
                if key == "types"
                else [after, before]
            )
            out.append(f"{key}: {shown[0]} (trained: {shown[1]})")
    return out


def with_declared(declared: tuple[Feature, ...]) -> tuple[Feature, ...]:
    """The built-in features, then ``declared``: the column order of a table with both."""
    return FEATURES + declared


def _feature(entry: Any, seen: set[str]) -> Feature | list[str]:
    if not isinstance(entry, dict):
        return ["a mapping (name, over, aggregate, window) is expected"]
    mistakes = [
        f"{key}: not a field (fields: {', '.join(_FIELDS)})" for key in entry if key not in _FIELDS
    ]
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        mistakes.append("name: lower-case letters, digits and _, beginning with a letter")
    elif name in FEATURE_NAMES:
        mistakes.append("name: a built-in feature has this name")
    elif name in seen:
        mistakes.append("name: declared twice")
    else:
        seen.add(name)
    over, aggregate, window = entry.get("over"), entry.get("aggregate"), entry.get("window")
    if over not in _ENTITIES:
        mistakes.append(f"over: {over!r} is not one of {', '.join(_ENTITIES)}")
    if aggregate not in _AGGREGATES:
        mistakes.append(f"aggregate: {aggregate!r} is not one of {', '.join(_AGGREGATES)}")
    if window not in _WINDOWS:
        mistakes.append(f"window: {window!r} is not one of {', '.join(_WINDOWS)}")
    types = entry.get("types", list(TRANSACTION_TYPES))
    if not isinstance(types, list) or not types:
        mistakes.append("types: a non-empty list of transaction types is expected")
    else:
        unknown = [t for t in types if t not in TRANSACTION_TYPES]
        if unknown:
            mistakes.append(
                f"types: {', '.join(map(repr, unknown))} not among {', '.join(TRANSACTION_TYPES)}"
            )
    doc = entry.get("doc", "")
    if not isinstance(doc, str):
        mistakes.append("doc: a sentence is expected")
    if mistakes:
        return mistakes
    return Feature(name, over, _AGGREGATES[aggregate], window, tuple(dict.fromkeys(types)), doc=doc)
