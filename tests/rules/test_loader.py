"""Rule files: every error found at load, naming the rule, its line and the field."""

from __future__ import annotations

import pytest

from vigil.detect.context import Context
from vigil.domain import Action
from vigil.rules.live import DEFAULT_RULES
from vigil.rules.loader import RuleFileError, known_reason_codes, load_rules


def problems(text: str) -> list[str]:
    with pytest.raises(RuleFileError) as caught:
        load_rules(text, source="r.yaml", known_reasons=known_reason_codes())
    return [str(p) for p in caught.value.problems]


def test_a_valid_file_compiles_every_setting(ctx: Context) -> None:
    rules = load_rules(
        """
version: 1
rules:
  - name: big
    description: far above the habit
    condition: amount > 3 * card.withdrawal.p95
    values:
      ratio: amount / card.withdrawal.p95
    score: 0.6
    action: review
    reason: "{amount:,.0f} is {ratio:.1f}x p95 ({card.withdrawal.p95:,.0f}); {account.n}"
    shadow: true
  - name: quiet
    condition: standin
    score: 1
    enabled: false
""",
        known_reasons=known_reason_codes(),
    )
    big, off = rules
    assert (big.code, big.score, big.action, big.shadow, big.enabled, big.line) == (
        "rule:big", 0.6, Action.REVIEW, True, True, 4
    )  # fmt: skip
    assert big.fields == {"amount", "card.withdrawal.p95"}
    p95 = ctx.profiles["card"].amount_quantile(0, 0.95)
    assert big.reason.render(ctx, frozenset()) == f"900 is {900 / p95:.1f}x p95 ({p95:,.0f}); n/a"
    assert (off.enabled, off.score, off.action) == (False, 1.0, None)


def test_every_error_is_reported_with_rule_line_and_field() -> None:
    found = problems(
        """rules:
  - name: one
    condition: amount > card.withdrawl.p95
    score: 0.5
  - name: two
    condition: amount + 1
    score: 1.5
  - name: three
    condition: channel == "atm"
    action: freeze
    reason: "{amount:d} at {terminal.town}"
  - name: one
    condition: standin
    score: 0.1
    colour: red
  - condition: standin
"""
    )
    assert found == [
        "r.yaml:3: rule 'one': condition: unknown field card.withdrawl.p95; "
        "did you mean card.withdrawal.p95? (column 10)",
        "r.yaml:6: rule 'two': condition: must be true/false, got a number",
        "r.yaml:7: rule 'two': score: 1.5 must be a number in (0, 1]",
        "r.yaml:10: rule 'three': action: 'freeze' is not one of allow, step_up, review, block",
        "r.yaml:11: rule 'three': reason: {amount:d}: format does not suit a number: "
        "Unknown format code 'd' for object of type 'float'",
        "r.yaml:11: rule 'three': reason: {terminal.town}: unknown field terminal.town; "
        "did you mean terminal.n? (column 1)",
        "r.yaml:15: rule 'one': colour: unknown setting (expected name, condition, score, "
        "action, reason, values, enabled, shadow, description)",
        "r.yaml:16: rule 'rules[4]': name: required: 1-64 letters, digits, '_', '.' or '-'",
        "r.yaml:16: rule 'rules[4]': needs a score or an action",
    ]


def test_duplicate_names_and_file_shape() -> None:
    assert problems(
        "rules:\n  - {name: a, condition: standin, score: 1}\n"
        "  - {name: a, condition: standin, score: 1}\n"
    ) == ["r.yaml:3: rule 'a': name: defined twice (first at line 2)"]
    assert problems("rules: 3\n") == ["r.yaml:1: rules: must be a list"]
    assert problems("- a\n- b\n") == ["r.yaml:1: expected a mapping with a 'rules' list"]
    assert problems("rules: [\n") == [
        "r.yaml:2: not YAML: expected the node content, but found '<stream end>'"
    ]
    assert problems("rules: []\nempty: true\nrulez: []\n") == [
        "r.yaml:3: rulez: unknown setting (expected rules, version, description, empty)"
    ]
    assert problems("rules:\n  - {name: a, condition: standin, score: 1, shadow: maybe}\n") == [
        "r.yaml:2: rule 'a': shadow: 'maybe' must be true or false"
    ]
    assert problems("rules:\n  - {name: a, condition: 'has_reason(\"nope\")', score: 1}\n")[
        0
    ].startswith("r.yaml:2: rule 'a': condition: unknown reason code 'nope'")


def test_values_are_checked_and_usable_in_conditions() -> None:
    assert problems(
        "rules:\n  - name: a\n    condition: ratio > 2\n    score: 1\n"
        "    values: {ratio: amount / country, amount: 1}\n"
    ) == [
        "r.yaml:5: rule 'a': values: ratio: '/' needs a number, got a string (country) (column 10)",
        "r.yaml:5: rule 'a': values: amount is a field already; choose another name",
        "r.yaml:3: rule 'a': condition: unknown field ratio (column 1)",
    ]
    rules = load_rules(
        "rules:\n  - {name: a, condition: ratio > 2, score: 1, values: {ratio: amount / 100}}\n"
    )
    assert rules[0].fields == {"amount"}


def test_the_default_rule_file_loads_and_starts_in_shadow_mode() -> None:
    rules = load_rules(DEFAULT_RULES.read_text(), known_reasons=known_reason_codes())
    assert len(rules) >= 5
    assert all(r.shadow and r.enabled for r in rules)
    assert any(r.condition.startswith('type == "withdrawal" and amount > 3 * card.withdrawal.p95')
               for r in rules)  # fmt: skip


def test_no_rules_is_refused_unless_the_file_says_so() -> None:
    # An empty upload or a truncated file must never switch every rule off by accident.
    hint = "write `empty: true` beside `rules: []` to switch every rule off on purpose"
    assert problems("") == [f"r.yaml:1: rules: the file is empty; {hint}"]
    assert problems("  \n\n") == [f"r.yaml:1: rules: the file is empty; {hint}"]
    assert problems("rules: []\n") == [f"r.yaml:1: rules: no rules; {hint}"]
    assert problems("rules:\n") == [f"r.yaml:1: rules: no rules; {hint}"]
    assert load_rules("rules: []\nempty: true\n") == []
    assert problems("rules:\n  - {name: a, condition: standin, score: 1}\nempty: true\n") == [
        "r.yaml:3: empty: true, but the file has 1 rule(s)"
    ]
    assert problems("rules: []\nempty: yes please\n") == [
        "r.yaml:2: empty: 'yes please' must be true or false"
    ]
