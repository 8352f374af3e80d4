"""A hand-built day of decisions whose figures are worked out by hand in the tests.

Fraud (8 units): card_cloning t1 (caught at its end, 5 min after its start) and t6 (missed,
another customer); lost_card t3 (missed), t4 (caught at its end), t5 (caught at its start),
and t8 three days later (caught); account_takeover login l1 and transfer t7 (both caught).
Legitimate (8 units): l2-l6 logins and t9 allowed, t10 and t11 false alarms.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

T = datetime(2022, 3, 1, 10, 0, tzinfo=UTC)


def minutes(n: float) -> datetime:
    return T + timedelta(minutes=n)


# event_id, transaction_id, kind, minute, score, action, reasons, user, card, terminal
DECISIONS = [
    ("s1", "t1", "transaction", 0, 0.30, "allow", ["new_terminal"], "u-1", "c-1", "EXT-1"),
    ("e1", "t1", "transaction", 5, 0.95, "block", ["impossible_travel"], "u-1", "c-1", "EXT-1"),
    ("s6", "t6", "transaction", 180, 0.10, "allow", [], "u-3", "c-3", "B-2"),
    ("e6", "t6", "transaction", 185, 0.20, "allow", [], "u-3", "c-3", "B-2"),
    ("s3", "t3", "transaction", 0, 0.10, "allow", [], "u-2", "c-2", "B-1"),
    ("e3", "t3", "transaction", 4, 0.20, "allow", [], "u-2", "c-2", "B-1"),
    ("s4", "t4", "transaction", 60, 0.30, "allow", [], "u-2", "c-2", "B-2"),
    ("e4", "t4", "transaction", 64, 0.80, "review", ["velocity_burst"], "u-2", "c-2", "B-2"),
    (
        "s5",
        "t5",
        "transaction",
        120,
        0.90,
        "block",
        ["velocity_burst", "extract_limit"],
        "u-2",
        "c-2",
        "EXT-1",
    ),
    ("e5", "t5", "transaction", 123, 0.50, "allow", [], "u-2", "c-2", "EXT-1"),
    ("e8", "t8", "transaction", 3 * 1440, 0.90, "block", ["extract_limit"], "u-2", "c-2", "B-1"),
    ("l1", None, "login", 10, 0.70, "step_up", ["new_device", "new_country"], "u-4", None, None),
    ("e7", "t7", "transaction", 20, 0.92, "block", ["new_counterparty"], "u-4", "c-4", None),
    ("l2", None, "login", 0, 0.05, "allow", [], "u-5", None, None),
    ("s9", "t9", "transaction", 30, 0.10, "allow", [], "u-5", "c-5", "B-1"),
    ("e9", "t9", "transaction", 33, 0.15, "allow", [], "u-5", "c-5", "B-1"),
    ("s10", "t10", "transaction", 40, 0.20, "allow", [], "u-6", "c-6", "B-2"),
    ("e10", "t10", "transaction", 44, 0.85, "review", ["amount_spike"], "u-6", "c-6", "B-2"),
    ("e11", "t11", "transaction", 50, 0.60, "step_up", ["velocity_burst"], "u-7", "c-7", "B-1"),
    ("l3", None, "login", 70, 0.01, "allow", [], "u-8", None, None),
    ("l4", None, "login", 80, 0.02, "allow", [], "u-9", None, None),
    ("l5", None, "login", 90, 0.50, "allow", [], "u-10", None, None),
    ("l6", None, "login", 100, 0.30, "allow", [], "u-11", None, None),
]

LABELS = [
    ("s1", "t1", "card_cloning"),
    ("e1", "t1", "card_cloning"),
    ("s6", "", "card_cloning"),  # a missing transaction id still reaches t6 via its decision
    ("s3", "t3", "lost_card"),
    ("e3", "t3", "lost_card"),
    ("s4", "t4", "lost_card"),
    ("e4", "t4", "lost_card"),
    ("s5", "t5", "lost_card"),
    ("e5", "t5", "lost_card"),
    ("e8", "t8", "lost_card"),
    ("x99", "t99", "lost_card"),  # labelled but never decided
    ("l1", "", "account_takeover"),
    ("e7", "t7", "account_takeover"),
]


def decisions_frame(rows: list[tuple] = DECISIONS) -> pl.DataFrame:
    columns = ["event_id", "transaction_id", "event_kind", "minute", "score", "action"]
    columns += ["reason_codes", "user_id", "card_id", "terminal_id"]
    frame = pl.DataFrame(rows, schema=columns, orient="row")
    return frame.with_columns(
        pl.coalesce("transaction_id", "event_id").alias("unit_id"),
        pl.col("minute")
        .map_elements(minutes, return_dtype=pl.Datetime("us", "UTC"))
        .alias("event_time"),
        pl.lit(42.0).alias("latency_us"),
    ).drop("minute")


def labels_frame(rows: list[tuple] = LABELS) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["event_id", "transaction_id", "pattern"], orient="row")
