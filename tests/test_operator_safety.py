"""Operator foot-guns (issue 18, item 8): what `vigil demo -o` may delete, and the mode of the
files vigil writes whole (reports, rule files)."""

from __future__ import annotations

import os
import re
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vigil.cli import DEMO_MARK, _demo_folder, app
from vigil.evaluate.report import write_report
from vigil.rules.live import install


def test_demo_refuses_a_folder_that_is_not_an_earlier_demos(tmp_path: Path) -> None:
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("years of work")
    result = CliRunner().invoke(app, ["demo", "-o", str(precious), "--cards", "10"])
    assert result.exit_code == 2, result.output
    said = re.sub(r"[\s│╭╮╰╯─]+", " ", result.output)  # the usage error's box, unwrapped
    assert "is not empty" in said and "nothing deleted" in said, said
    assert (precious / "chapter1.tex").read_text() == "years of work"

    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep")
    assert CliRunner().invoke(app, ["demo", "-o", str(a_file)]).exit_code == 2
    assert a_file.read_text() == "keep"


def test_demo_replaces_only_an_earlier_demo(tmp_path: Path) -> None:
    new = tmp_path / "new"
    _demo_folder(new)
    assert (new / DEMO_MARK).is_file()
    (new / "vigil.db").write_text("old demo")
    _demo_folder(new)  # an earlier demo's folder: replaced
    assert sorted(p.name for p in new.iterdir()) == [DEMO_MARK]
    empty = tmp_path / "empty"
    empty.mkdir()
    _demo_folder(empty)
    assert (empty / DEMO_MARK).is_file()


@pytest.fixture
def umask_022() -> object:
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.usefixtures("umask_022")
def test_reports_and_rule_files_get_the_ordinary_mode(tmp_path: Path) -> None:
    import polars as pl

    from vigil.evaluate import evaluate

    decisions = pl.DataFrame({"event_id": ["e1"], "event_time": [datetime(2022, 1, 1, tzinfo=UTC)],
                              "score": [0.9], "action": ["block"]})  # fmt: skip
    labels = pl.DataFrame({"event_id": ["e1"], "pattern": ["amount_spike"]})
    written = write_report(evaluate(decisions, labels), tmp_path / "report")

    class Store:  # what install() records the version in
        def activate_rules(self, *args: object, **kwargs: object) -> tuple[int, bool]:
            return 1, True

    rules = tmp_path / "rules.yaml"
    install(rules, "rules: []\nempty: true\n", store=Store(), source="test")
    for path in (*written, rules):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
