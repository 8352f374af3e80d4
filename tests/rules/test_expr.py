"""The expression language: what it computes, what a missing value does, what it refuses."""

from __future__ import annotations

import math

import pytest

from vigil.detect.context import Context
from vigil.geo import haversine_km
from vigil.rules.expr import ExpressionError, compile_expression
from vigil.rules.fields import FIELDS

NO_CODES: frozenset[str] = frozenset()


def value(text: str, ctx: Context, codes: frozenset[str] = NO_CODES):
    return compile_expression(text).fn(ctx, codes)


def test_the_issue_example_reads_the_card_profile(ctx: Context) -> None:
    card = ctx.profiles["card"]
    p95 = card.amount_quantile(0, 0.95)
    assert 180 < p95 < 200  # 20 amounts 100..195
    assert value("amount > 3 * card.withdrawal.p95 and card.withdrawal.count_90d >= 10", ctx)
    assert not value("amount > 5 * card.withdrawal.p95", ctx)
    assert value("card.withdrawal.count_90d", ctx) == 20
    assert value("card.withdrawal.count_1d", ctx) == 1  # the withdrawal one day ago
    week = sum(100 + 5 * i for i in range(13, 20))
    assert value("card.withdrawal.sum_7d", ctx) == pytest.approx(week)
    assert value("card.withdrawal.mean", ctx) == pytest.approx(147.5)
    assert value("card.withdrawal.p95", ctx) == p95
    assert value("card.withdrawal.n", ctx) == 20


def test_event_reference_and_entity_fields(ctx: Context) -> None:
    assert value("hour", ctx) == 2
    assert value("weekday", ctx) == 0  # Monday
    assert value('type == "withdrawal" and channel == "atm" and phase == "single"', ctx)
    assert value("terminal.internal", ctx) is False
    assert value("card.extract_limit", ctx) == 1000.0
    assert value("card.behaviour.amount_avg_withdrawal", ctx) == 150.0
    # The card was last in Lagos, this ATM is in Abuja.
    assert value("card.distance_km", ctx) == pytest.approx(haversine_km(6.45, 3.39, 9.06, 7.49))
    assert 500 < value("card.distance_km", ctx) < 560
    assert value("card.seconds_since_last", ctx) == pytest.approx(86400.0)
    assert value("card.seen_country", ctx) == 1
    assert value("card.new_terminal", ctx) is True  # ATM-2 is new, ATM-1 known
    assert value("card.age_days", ctx) == pytest.approx(20.0)


def test_arithmetic_functions_and_lists(ctx: Context) -> None:
    assert value("amount / 4 + 2 * 3 - 1", ctx) == 230.0
    assert value("amount % 400", ctx) == 100.0
    assert value("-amount", ctx) == -900.0
    assert value("abs(100 - amount)", ctx) == 800.0
    assert value("min(amount, card.extract_limit, 950)", ctx) == 900.0
    assert value("max(amount, card.extract_limit)", ctx) == 1000.0
    assert value('channel in ["atm", "pos"] and type not in ["deposit"]', ctx)
    assert value("100 < amount <= 900", ctx) and not value("100 < amount < 900", ctx)
    assert value("has(card.extract_limit) and not has(account.transfer.mean)", ctx)
    assert value('has_reason("new_device")', ctx, frozenset({"new_device"}))
    assert not value('has_reason("new_device")', ctx)
    assert value("true and not false", ctx)


def test_missing_values_make_comparisons_false(ctx: Context, login_ctx: Context) -> None:
    # No account on the event: every comparison with an account field is false, == and != too.
    for text in (
        "account.transfer.count_1d > 0",
        "account.transfer.count_1d <= 0",
        "account.transfer.count_1d == 0",
        "account.transfer.count_1d != 0",
        "account.transfer.mean in [1, 2]",
        "account.transfer.mean not in [1, 2]",
        "amount > 2 * account.transfer.mean",
        "amount * account.transfer.mean > 0",
        "max(amount, account.transfer.mean) > 0",
        "abs(account.transfer.mean) >= 0",
    ):
        assert value(text, ctx) is False, text
    # A profile with no amounts yet: statistics are missing, counts are zero.
    assert value("card.deposit.mean", ctx) is None
    assert value("card.deposit.p99", ctx) is None
    assert value("card.deposit.count_90d", ctx) == 0
    assert value("amount > card.deposit.p95", ctx) is False
    # Division by zero is missing, not an error.
    assert value("amount / (card.deposit.count_1d)", ctx) is None
    assert value("amount / 0", ctx) is None
    # A login has no amount or type; `not` of a missing boolean is true, has() says why.
    assert value("amount > 0", login_ctx) is False
    assert value('type == "withdrawal"', login_ctx) is False
    assert value("not terminal.internal", login_ctx) is True
    assert value("has(terminal.internal)", login_ctx) is False
    assert value("user.login.count_1h == 0 and success", login_ctx) is True


def test_quantile_nan_reads_as_missing(ctx: Context) -> None:
    assert math.isnan(ctx.profiles["card"].amount_quantile(1, 0.95))
    assert value("card.deposit.p95", ctx) is None


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("card.withdrawl.p95 > 1", "card.withdrawl.p95",
         "unknown field card.withdrawl.p95; did you mean card.withdrawal.p95?"),
        ("amount > country", "country", "'>' compares numbers, got a string (country)"),
        ('type == 3', "type", "'==' compares a string (type) with a number"),
        ('channel == "branch"', "channel", "'branch' is not a value of channel"),
        ('channel in ["atm", "bank"]', "channel", "'bank' is not a value of channel"),
        ("amount + standin > 1", "standin", "'+' needs a number, got a bool (standin)"),
        ("amount and standin", "amount", "'and' needs true/false, got a number (amount)"),
        ("not amount", "amount", "'not' needs true/false, got a number (amount)"),
        ('has_reason("new_devise")', "new_devise",
         "unknown reason code 'new_devise'; did you mean new_device?"),
        ('country in ["NG", 3]', "country", "'in' list holds a number but country is a string"),
    ],
)  # fmt: skip
def test_type_errors_name_the_field(text: str, field: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(text, known_reasons={"new_device", "new_country"})
    assert message in str(caught.value)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os').system('true')", "function __import__('os').system() is not allowed"),
        ("amount.__class__", "unknown field amount.__class__"),
        ("card.extract_limit.real > 1", "unknown field card.extract_limit.real"),
        ("[x for x in [1]]", "listcomp is not allowed"),
        ("amount ** 2 > 1", "operator Pow is not allowed"),
        ("lambda: 1", "lambda is not allowed"),
        ("amount if standin else 0", "ifexp is not allowed"),
        ("amount[0]", "subscript is not allowed"),
        ("len(country) > 1", "function len() is not allowed"),
        ("amount > None", "the literal None is not allowed"),
        ("country is country", "'is' is not allowed"),
        ("country in country", "'in' needs a list of literals"),
        ("amount >", "syntax error"),
        ("", "empty expression"),
    ],
)
def test_anything_outside_the_language_is_refused(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(text)
    assert message in str(caught.value)


def test_every_field_is_typed_and_readable(ctx: Context, login_ctx: Context) -> None:
    python_types = {"number": (int, float), "string": (str,), "bool": (bool,)}
    for name, field in FIELDS.items():
        for c in (ctx, login_ctx):
            got = field.get(c, NO_CODES)
            assert got is None or isinstance(got, python_types[field.type]), (name, got)
            if got is not None and field.values is not None:
                assert got in field.values, (name, got)
            if isinstance(got, float):
                assert not math.isnan(got), name
