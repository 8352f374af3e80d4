"""Rules in the engine: scores and actions, shadow mode, reload on change, version history."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vigil.config import RulesConfig, Settings
from vigil.domain import Action, Reason
from vigil.engine import Engine
from vigil.profiles import MemoryProfileStore
from vigil.recorder import Recorder
from vigil.rules.live import DEFAULT_RULES, LiveRules, NoRules, sha256_text
from vigil.rules.loader import RuleFileError
from vigil.storage import Store

T0 = datetime(2022, 1, 3, 10, tzinfo=UTC)


def withdrawal(i: int, amount: str, **extra: object) -> dict:
    return {
        "kind": "transaction", "event_id": f"e-{i}", "transaction_id": f"t-{i}",
        "card_id": "c-1", "type": "withdrawal", "amount": amount,
        "timestamp": (T0 + timedelta(hours=i)).isoformat(), **extra,
    }  # fmt: skip


def engine_with(tmp_path: Path, text: str, **kwargs: object) -> Engine:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    settings = Settings(rules=RulesConfig(path=path, poll_seconds=3600))
    return Engine.in_memory(settings=settings, detectors=[], **kwargs)


def test_a_rule_hit_is_a_reason_combined_by_noisy_or(tmp_path: Path) -> None:
    engine = engine_with(
        tmp_path,
        """rules:
  - {name: big, condition: amount >= 1000, score: 0.5, reason: "{amount:,.0f} withdrawn"}
  - {name: very_big, condition: amount >= 5000, score: 0.6}
""",
    )
    small = engine.process(withdrawal(1, "10"))
    assert (small.action, small.score, small.reasons) == (Action.ALLOW, 0.0, [])
    one = engine.process(withdrawal(2, "2000"))
    assert one.score == 0.5 and one.action is Action.STEP_UP
    assert one.reasons == [Reason(code="rule:big", score=0.5, detail="2,000 withdrawn")]
    both = engine.process(withdrawal(3, "6000"))
    assert both.score == pytest.approx(1 - 0.5 * 0.4)  # 0.8: review
    assert both.action is Action.REVIEW
    assert [r.code for r in both.reasons] == ["rule:very_big", "rule:big"]


def test_action_rules_set_the_least_action_and_allow_overrides_the_score(tmp_path: Path) -> None:
    engine = engine_with(
        tmp_path,
        """rules:
  - {name: night, condition: hour < 6, action: block}
  - {name: big, condition: amount >= 1000, score: 0.95}
  - {name: test_card, condition: amount == 1234, action: allow}
  - {name: review_mid, condition: amount == 1234 and hour < 6, action: review}
""",
    )
    base = T0.replace(hour=0)
    night = engine.process(withdrawal(1, "10", timestamp=(base + timedelta(hours=3)).isoformat()))
    assert (night.action, night.score, [r.code for r in night.reasons]) == (
        Action.BLOCK, 0.0, ["rule:night"]
    )  # fmt: skip
    big = engine.process(withdrawal(12, "2000"))
    assert big.action is Action.BLOCK and big.score == 0.95
    allowed = engine.process(withdrawal(13, "1234"))
    assert allowed.action is Action.ALLOW and allowed.score == 0.95
    # A floor from another rule wins over allow.
    floor = engine.process(withdrawal(2, "1234", timestamp=(base + timedelta(hours=4)).isoformat()))
    assert floor.action is Action.BLOCK


def test_shadow_rules_are_recorded_and_change_nothing(tmp_path: Path) -> None:
    text = "rules:\n  - {name: big, condition: amount >= 1000, score: 0.95, action: block%s}\n"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    live = engine_with(tmp_path / "a", text % "")
    shadow = engine_with(tmp_path / "b", text % ", shadow: true")
    for i, amount in enumerate(["10", "2000", "50", "3000"]):
        event = withdrawal(i, amount)
        with_live, with_shadow = live.process(event), shadow.process(event)
        hit = float(amount) >= 1000
        assert with_live.action is (Action.BLOCK if hit else Action.ALLOW)
        assert with_shadow.action is Action.ALLOW and with_shadow.score == 0.0
        assert with_shadow.reasons == []
        assert [r.code for r in with_shadow.shadow] == (["rule:big"] if hit else [])
        assert with_live.shadow == []


def test_a_changed_file_is_picked_up_and_a_broken_one_keeps_the_old_rules(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - {name: big, condition: amount >= 1000, score: 0.6}\n")
    now = [0.0]
    live = LiveRules(path, poll_seconds=5, clock=lambda: now[0])
    engine = Engine.in_memory(detectors=[], rules=live)
    assert engine.process(withdrawal(1, "2000")).score == 0.6

    path.write_text("rules:\n  - {name: bigger, condition: amount >= 1000, score: 0.9}\n")
    os.utime(path, ns=(1, 1))  # a different mtime even within the filesystem's resolution
    now[0] = 4.9  # within the poll interval: not even looked at
    assert engine.process(withdrawal(2, "2000")).score == 0.6
    now[0] = 5.0
    assert engine.process(withdrawal(3, "2000")).score == 0.9
    assert [r.name for r in live.book.rules] == ["bigger"]

    path.write_text("rules:\n  - {name: broken, condition: amount >= country, score: 0.9}\n")
    now[0] = 10.0
    decision = engine.process(withdrawal(4, "2000"))
    assert decision.score == 0.9 and [r.code for r in decision.reasons] == ["rule:bigger"]
    assert live.error is not None
    assert "rule 'broken': condition: '>=' compares numbers" in str(live.error)

    path.unlink()
    now[0] = 20.0
    assert engine.process(withdrawal(5, "2000")).score == 0.9  # a vanished file changes nothing


def test_polling_costs_one_stat_per_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules: []\nempty: true\n")
    now = [0.0]
    live = LiveRules(path, poll_seconds=5, clock=lambda: now[0])
    calls = []
    real_stat = Path.stat
    # Counting the real Path.stat calls on the rule file (the stat still runs): a poll is one
    # stat. Other files are not counted: settings libraries stat their own files (vigil.toml).
    monkeypatch.setattr(
        Path,
        "stat",
        lambda self, **kw: (self == path and calls.append(self)) or real_stat(self, **kw),
    )
    engine = Engine.in_memory(detectors=[], rules=live)
    for i in range(51):
        now[0] = i * 0.5  # events from 0 to 25 s
        engine.process(withdrawal(i, "10"))
    assert len(calls) == 5  # at 5, 10, 15, 20 and 25 s


def test_a_broken_file_at_start_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - {name: x, condition: amount, score: 1}\n")
    with pytest.raises(RuleFileError, match="rule 'x': condition: must be true/false"):
        LiveRules(path)
    settings = Settings(rules=RulesConfig(path=path))
    with pytest.raises(RuleFileError):
        Engine.in_memory(settings=settings)


def test_rules_switched_off() -> None:
    engine = Engine.in_memory(settings=Settings(rules=RulesConfig(enabled=False)))
    assert isinstance(engine.rules, NoRules)
    assert Engine.in_memory().rules.book.source == str(DEFAULT_RULES)


def test_versions_and_shadow_hits_are_recorded_in_the_store(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    first = "rules:\n  - {name: big, condition: amount >= 1000, score: 0.5, shadow: true}\n"
    path.write_text(first)
    settings = Settings(rules=RulesConfig(path=path, poll_seconds=3600))
    engine = Engine(
        store.load_reference(), MemoryProfileStore(), Recorder(store), settings=settings,
        detectors=[],
    )  # fmt: skip
    assert engine.rules.book.version == 1
    decision = engine.process(withdrawal(1, "2000"))
    engine.process(withdrawal(2, "20"))
    engine.recorder.flush()
    hits = store.rule_shadow_hits()
    assert [(h["event_id"], h["rule"], h["score"], h["action"]) for h in hits] == [
        ("e-1", "rule:big", 0.5, "allow")
    ]
    assert hits[0]["decision_id"] == decision.decision_id
    assert store.rule_shadow_hits(rule="rule:other") == []

    # The same file again is the same version; a new content is the next one.
    assert store.activate_rules(first, sha256_text(first), path=str(path), source="test") == (
        1, False
    )  # fmt: skip
    second = first.replace("1000", "5000")
    path.write_text(second)
    assert engine.rules.reload()
    assert engine.rules.book.version == 2
    versions = store.rule_versions()
    assert [(v["version"], v["sha256"], v["content"]) for v in versions] == [
        (2, sha256_text(second), second),
        (1, sha256_text(first), first),
    ]
    assert versions[0]["path"] == str(path)
    assert versions[0]["source"].startswith("engine ")
    assert versions[0]["activated_at"] >= versions[1]["activated_at"]
