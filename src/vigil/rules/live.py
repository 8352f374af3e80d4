"""The rules in force: a rule book that follows its file without a restart.

:class:`LiveRules` loads the configured rule file (the packaged :data:`DEFAULT_RULES` unless
``rules.path`` says otherwise) and, at most every ``poll_seconds``, compares the file's
modification time and size with what it loaded: one ``stat`` per interval, never a
filesystem call per event. A changed file is validated; a valid one replaces the book in one
assignment (an event is judged by the old book or the new, never half of each), a broken one
is logged and the previous rules stay in force. Every version put in force is reported to
``on_activate`` (the engine records it in the store's ``rule_versions`` table).

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "rules.yaml"
>>> _ = path.write_text("rules:\\n  - {name: big, condition: amount > 10000, score: 0.5}\\n")
>>> live = LiveRules(path, poll_seconds=60)
>>> [r.name for r in live.book.rules], len(live.book.sha256)
(['big'], 64)
>>> _ = path.write_text("rules:\\n  - {name: big, condition: amount > , score: 0.5}\\n")
>>> live.reload()
False
>>> [r.name for r in live.book.rules], live.error is not None
(['big'], True)
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
from collections.abc import Callable, Collection
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from vigil.config import RulesConfig
from vigil.domain import Reason
from vigil.files import replace_file
from vigil.rules.book import RuleBook, Verdict
from vigil.rules.loader import Problem, Rule, RuleFileError, load_rules

log = logging.getLogger("vigil.rules")

#: The rule set shipped with vigil; copy it, edit it, and set ``rules.path`` to the copy.
DEFAULT_RULES = Path(__file__).with_name("default.yaml")

# (content, sha256, path) → version number, or None when versions are not recorded.
OnActivate = Callable[[str, str, str], int | None]


class Rules(Protocol):
    """What the engine asks of its rules: the book in force and a verdict per event."""

    book: RuleBook

    def judge(self, ctx: Any, reasons: list[Reason]) -> Verdict: ...


def rules_path(config: RulesConfig) -> Path:
    """The rule file the configuration puts in force."""
    return config.path if config.path is not None else DEFAULT_RULES


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@lru_cache(maxsize=32)
def _compiled(text: str, source: str, known_reasons: frozenset[str] | None) -> tuple[Rule, ...]:
    # Rules are immutable, so engines loading the same file share one compilation.
    return tuple(load_rules(text, source=source, known_reasons=known_reasons))


def compile_file(
    path: Path, known_reasons: Collection[str] | None = None
) -> tuple[str, list[Rule]]:
    """The file's text and rules; raises RuleFileError (unreadable files included)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _unreadable(path, exc) from exc
    known = frozenset(known_reasons) if known_reasons is not None else None
    return text, list(_compiled(text, str(path), known))


def compile_text(
    text: str, source: str, known_reasons: Collection[str] | None = None
) -> list[Rule]:
    """The rules of a rule file's text (a posted one, say); raises RuleFileError."""
    known = frozenset(known_reasons) if known_reasons is not None else None
    return list(_compiled(text, source, known))


def rule_counts(rules: Collection[Rule]) -> dict[str, int]:
    """How many rules, and how many of them live, shadow and disabled."""
    return {
        "rules": len(rules),
        "live": sum(r.enabled and not r.shadow for r in rules),
        "shadow": sum(r.enabled and r.shadow for r in rules),
        "disabled": sum(not r.enabled for r in rules),
    }


class PackagedRulesError(ValueError):
    """New rules cannot go in place of the packaged default file: it belongs to vigil."""


def install(target: Path, text: str, *, store: Any, source: str) -> tuple[int, bool]:
    """Put validated rule text in place of the rule file ``target`` and record it as a version.

    The file is replaced atomically (a running engine reads the old file or the new, never
    half of one; others pick it up within ``poll_seconds``). Returns ``(version, new)`` as
    ``Store.activate_rules`` does. ``vigil rules reload`` and ``PUT /v1/admin/rules`` both
    come here.
    """
    current = target.read_text(encoding="utf-8") if target.exists() else None
    if text != current:
        if target == DEFAULT_RULES:
            raise PackagedRulesError(
                "rules.path is the packaged default; set rules.path (VIGIL_RULES__PATH) "
                "to a file of your own to put rules in force"
            )
        replace_file(target, text)
    return store.activate_rules(text, sha256_text(text), path=str(target), source=source)


def _unreadable(path: Path, exc: Exception) -> RuleFileError:
    return RuleFileError(str(path), [Problem(str(path), None, None, None, f"unreadable: {exc}")])


class LiveRules:
    """The rule book in force, kept in step with its file (see the module docstring).

    Construction loads the file and raises :class:`RuleFileError` when it is broken: with no
    earlier rules to keep, refusing to start is the clear failure.
    """

    def __init__(
        self,
        path: Path,
        *,
        poll_seconds: float = 5.0,
        known_reasons: Collection[str] | None = None,
        on_activate: OnActivate | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.poll_seconds = poll_seconds
        self.known_reasons = frozenset(known_reasons) if known_reasons is not None else None
        self.on_activate = on_activate
        self.clock = clock
        self.book = RuleBook()
        self.error: RuleFileError | None = None
        self._stamp: tuple[int, int] | None = None
        self._next_poll = clock() + poll_seconds
        if not self.reload():
            assert self.error is not None
            raise self.error

    @classmethod
    def from_config(
        cls,
        config: RulesConfig,
        *,
        known_reasons: Collection[str] | None = None,
        on_activate: OnActivate | None = None,
    ) -> LiveRules | NoRules:
        if not config.enabled:
            return NoRules()
        return cls(
            rules_path(config),
            poll_seconds=config.poll_seconds,
            known_reasons=known_reasons,
            on_activate=on_activate,
        )

    def judge(self, ctx: Any, reasons: list[Reason]) -> Verdict:
        """The rules' verdict on one event; checks the file first when the interval is up."""
        now = self.clock()
        if now >= self._next_poll:
            self._next_poll = now + self.poll_seconds
            self.poll()
        return self.book.judge(ctx, reasons)

    def poll(self) -> bool:
        """Reload when the file's modification time or size changed; True if a new book."""
        try:
            stat = self.path.stat()
        except OSError as exc:
            log.error("rules file %s: %s; the rules in force stay", self.path, exc)
            return False
        if (stat.st_mtime_ns, stat.st_size) == self._stamp:
            return False
        return self.reload()

    def reload(self) -> bool:
        """Validate the file and put it in force; False (old rules kept) when it is broken."""
        try:
            stat = os.stat(self.path)
            text, rules = compile_file(self.path, self.known_reasons)
        except RuleFileError as exc:
            self.error = exc
            log.error("%s; the rules in force stay", exc)
            return False
        except OSError as exc:
            self.error = _unreadable(self.path, exc)
            log.error("%s; the rules in force stay", self.error)
            return False
        self._stamp = (stat.st_mtime_ns, stat.st_size)
        self.error = None
        sha = sha256_text(text)
        if sha == self.book.sha256:
            return False
        version = None
        if self.on_activate is not None:
            version = self.on_activate(text, sha, str(self.path))
        self.book = RuleBook(rules, sha256=sha, source=str(self.path), version=version)
        log.info("rules %s in force: %d rules (version %s)", self.path, len(rules), version)
        return True


class NoRules:
    """Rules switched off (``rules.enabled = false``): the detectors' reasons, unchanged.

    >>> NoRules().judge(None, []).reasons
    []
    """

    book = RuleBook()

    def judge(self, ctx: Any, reasons: list[Reason]) -> Verdict:
        return Verdict(reasons)


def engine_rules(
    config: RulesConfig, detectors: Collection[Any], store: Any | None = None
) -> LiveRules | NoRules:
    """The rules an engine runs: its detectors' codes are what ``has_reason`` may name, and
    with a store every version it puts in force is recorded in the version history.

    >>> engine_rules(RulesConfig(enabled=False), []).book.rules
    ()
    """
    known = frozenset(code for d in detectors for code in d.codes)
    on_activate = None
    if store is not None:
        source = f"engine {socket.gethostname()}:{os.getpid()}"

        def on_activate(text: str, sha: str, path: str) -> int | None:
            return store.activate_rules(text, sha, path=path, source=source)[0]

    return LiveRules.from_config(config, known_reasons=known, on_activate=on_activate)
