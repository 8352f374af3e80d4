"""Benchmark: what rules cost per event, on contexts from a real replay of a synthetic bank.

Generates a small bank, replays it through an in-memory engine and keeps every event's
context and detector reasons as the rules saw them; then times, per event, the rule book's
``judge`` for: no rules, one simple comparison (``amount > 1000``), the issue's example
(``amount > 3 * card.withdrawal.p95 and card.withdrawal.count_90d >= 10``), and the default
rule set (all rules evaluated; the default set is shadow-only, which costs the same).

Contexts are timed after the replay, so their profiles hold the state at the end of the
replay rather than at the event (same structure, same cost to read). Target: a simple rule
at most 2 µs per event.

    python bench/rules.py --cards 500 --days 14
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from vigil.domain import Reason
from vigil.engine import Engine
from vigil.ingest import iter_event_file
from vigil.replay import in_event_time_order, replay
from vigil.rules.backtest import reference_from_folder
from vigil.rules.book import RuleBook, Verdict
from vigil.rules.live import DEFAULT_RULES
from vigil.rules.loader import known_reason_codes, load_rules
from vigil.simulate import BankConfig, generate


class _Capture:
    """Rules for the replay: none in force, every (context, reasons) kept for timing."""

    book = RuleBook()

    def __init__(self) -> None:
        self.seen: list[tuple[Any, list[Reason]]] = []

    def judge(self, ctx: Any, reasons: list[Reason]) -> Verdict:
        self.seen.append((ctx, reasons))
        return Verdict(reasons)


def _book(conditions: dict[str, str]) -> RuleBook:
    text = "rules:\n" + "".join(
        f"  - name: {name}\n    condition: '{cond}'\n    score: 0.5\n"
        for name, cond in conditions.items()
    )
    return RuleBook(load_rules(text))


def _per_event_us(book: RuleBook, seen: list[tuple[Any, list[Reason]]], repeat: int) -> float:
    judge = book.judge
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter_ns()
        for ctx, reasons in seen:
            judge(ctx, reasons)
        best = min(best, time.perf_counter_ns() - started)
    return best / len(seen) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=500)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--repeat", type=int, default=5, help="timed passes; the best is kept")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="vigil-bench-rules-"))
    generate(BankConfig(seed=7, cards=args.cards, days=args.days), folder)
    capture = _Capture()
    engine = Engine.in_memory(reference_from_folder(folder), rules=capture)
    replay(engine, iter_event_file(in_event_time_order(folder / "events.parquet")))
    seen = capture.seen

    books = {
        "no_rules": RuleBook(),
        "simple_rule": _book({"simple": "amount > 1000"}),
        "issue_example_rule": _book(
            {"example": "amount > 3 * card.withdrawal.p95 and card.withdrawal.count_90d >= 10"}
        ),
        "default_set": RuleBook(
            [
                r.__class__(**{**{f: getattr(r, f) for f in r.__slots__}, "shadow": False})
                for r in load_rules(DEFAULT_RULES.read_text(), known_reasons=known_reason_codes())
            ]
        ),
    }
    figures: dict[str, Any] = {"events": len(seen), "cards": args.cards, "days": args.days}
    for name, book in books.items():
        figures[f"{name}_us_per_event"] = round(_per_event_us(book, seen, args.repeat), 3)
    figures["default_set_rules"] = len(books["default_set"].rules)
    figures["simple_rule_target_met"] = figures["simple_rule_us_per_event"] <= 2.0
    for key, value in figures.items():
        print(f"{key:>32}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
