"""What a transaction model reads: the built-in features, the amount, and declared features.

A model trained with a feature file (``vigil train --feature-file F``,
:mod:`vigil.features.declared`) reads the file's declared features beside the built-in ones.
Its card (the manifest's ``feature_file``) keeps the file's path and sha256 and the
declaration of every declared feature the model reads, in the file's own words
(:func:`feature_card`). From the card:

- :func:`offline_features` gives the builder the features to score or stack the model on
  (``vigil score transactions``, ``vigil train --target combiner``): the declarations it was
  trained on, whatever the feature file says today;
- :func:`served_features` gives the engine the features to read online, checked against the
  feature file the engine runs with (``models.feature_file``): each declared feature the model
  reads must be declared there and compute the same values, else :class:`ModelFeaturesError`
  names it. Without the check a missing feature would be read as missing (NaN) on every
  event, and the served model would be silently worse than its report.

>>> import tempfile
>>> from pathlib import Path
>>> from vigil.features import FEATURES, load_feature_file
>>> path = Path(tempfile.mkdtemp()) / "features.yaml"
>>> _ = path.write_text("features: [{name: card_sent_1d, over: card, aggregate: sum, "
...                     "window: 1d, types: [transfer]}]")
>>> manifest = {"name": "transaction", "version": "v0001",
...             "features": ["amount", "card_sent_1d"],
...             "feature_file": feature_card(path, load_feature_file(path), ["card_sent_1d"])}
>>> [entry["name"] for entry in manifest["feature_file"]["declared"]]
['card_sent_1d']
>>> served_features(manifest, path)[len(FEATURES):] == offline_features(manifest)[len(FEATURES):]
True
>>> _ = path.write_text("features: [{name: card_sent_1d, over: card, aggregate: sum, "
...                     "window: 7d, types: [transfer]}]")
>>> try:
...     served_features(manifest, path)
... except ModelFeaturesError as exc:
...     print(str(exc).split(": ", 1)[1])
window: 7d (trained: 1d)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vigil.features.declared import (
    declaration,
    declared_from,
    differences,
    load_feature_file,
    with_declared,
)
from vigil.features.spec import FEATURE_NAMES, Feature

#: The input the models add to the features: the event's own amount.
AMOUNT = "amount"


class ModelFeaturesError(ValueError):
    """A model reads features the engine cannot compute as it was trained: each on its own
    line, naming the model, the feature and the feature file."""


def feature_card(
    path: Path | str, declared: tuple[Feature, ...], names: Sequence[str]
) -> dict[str, Any]:
    """The card of a model reading ``names`` trained with the feature file ``path`` (which
    declares ``declared``): the file's path and sha256, and the declarations it reads."""
    wanted = set(names)
    return {
        "path": str(path),
        "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
        "declared": [declaration(f) for f in declared if f.name in wanted],
    }


def card_declared(manifest: Mapping[str, Any]) -> tuple[Feature, ...]:
    """The declared features the model's card says it reads (none without a card)."""
    card = manifest.get("feature_file") or {}
    return declared_from(card.get("declared", []), source=_model(manifest) + " card")


def offline_features(manifest: Mapping[str, Any]) -> tuple[Feature, ...]:
    """The builder's features for the model: the built-in ones, then those it was trained on."""
    return with_declared(card_declared(manifest))


def served_features(
    manifest: Mapping[str, Any], feature_file: Path | str | None
) -> tuple[Feature, ...]:
    """The engine's features for the model, its declared ones checked against the feature
    file the engine runs with (see the module doc); :class:`ModelFeaturesError` lists every
    feature that cannot be read as in training, a bad feature file its mistakes
    (:class:`~vigil.features.declared.FeatureFileError`)."""
    model = _model(manifest)
    trained = card_declared(manifest)
    known = {*FEATURE_NAMES, AMOUNT, *(f.name for f in trained)}
    problems = [
        f"{model} reads feature {name}, which is neither built in nor declared in its card: "
        "train it with vigil train --feature-file"
        for name in manifest.get("features", [])
        if name not in known
    ]
    if trained:
        card = manifest["feature_file"]
        origin = f"trained with {card['path']}, sha256 {card['sha256'][:12]}"
        current = _current(feature_file)
        for f in trained:
            if current is None:
                problems.append(
                    f"{model} reads declared feature {f.name} ({origin}), and the engine has "
                    "no feature file: set models.feature_file (VIGIL_MODELS__FEATURE_FILE) to "
                    "one that declares it"
                )
            elif f.name not in current:
                problems.append(
                    f"{model} reads declared feature {f.name}, which the feature file "
                    f"{feature_file} does not declare ({origin})"
                )
            elif changed := differences(f, current[f.name]):
                problems.append(
                    f"{model} reads declared feature {f.name}, which the feature file "
                    f"{feature_file} declares otherwise: {'; '.join(changed)}"
                )
    if problems:
        raise ModelFeaturesError("\n".join(problems))
    return with_declared(trained)


def _current(feature_file: Path | str | None) -> dict[str, Feature] | None:
    """The feature file's features by name; its mistakes (an unreadable file too) raise
    :class:`~vigil.features.declared.FeatureFileError`, each named."""
    if feature_file is None:
        return None
    return {f.name: f for f in load_feature_file(feature_file)}


def _model(manifest: Mapping[str, Any]) -> str:
    return f"model {manifest.get('name', 'transaction')} {manifest.get('version', 'unsaved')}"
