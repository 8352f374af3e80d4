"""`vigil rules check|list|reload|history|fields`: exit codes, errors, versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vigil.cli import app
from vigil.rules import cli as rules_cli
from vigil.rules.live import DEFAULT_RULES

runner = CliRunner()
GOOD = "rules:\n  - {name: big, condition: amount >= 1000, score: 0.5}\n"
BETTER = "rules:\n  - {name: big, condition: amount >= 2000, score: 0.5, shadow: true}\n"
BROKEN = (
    "rules:\n  - {name: a, condition: amount > country, score: 0.5}\n"
    "  - {name: b, condition: standin, score: 2}\n"
)


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_check_lists_every_error_and_exits_non_zero(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(BROKEN)
    result = runner.invoke(app, ["rules", "check", str(path)])
    assert result.exit_code == 1
    assert f"{path}:2: rule 'a': condition: '>' compares numbers, got a string (country)" in (
        result.output
    )
    assert f"{path}:3: rule 'b': score: 2 must be a number in (0, 1]" in result.output
    assert len(last_json(result.output)["errors"]) == 2
    path.write_text(GOOD)
    result = runner.invoke(app, ["rules", "check", str(path)])
    assert result.exit_code == 0
    assert last_json(result.output) == {
        "file": str(path), "ok": True, "rules": 1, "live": 1, "shadow": 0, "disabled": 0
    }  # fmt: skip
    # No file at the path is a mistake in the command (tests/test_cli_errors.py): exit code 2.
    missing = runner.invoke(app, ["rules", "check", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "nope.yaml: no such file" in missing.output


def test_reload_activates_versions_and_a_broken_file_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_force = tmp_path / "rules.yaml"
    in_force.write_text(GOOD)
    monkeypatch.setenv("VIGIL_RULES__PATH", str(in_force))
    db = ["--database", f"sqlite:///{tmp_path / 'v.db'}"]

    first = runner.invoke(app, ["rules", "reload", *db])
    assert first.exit_code == 0, first.output
    assert last_json(first.output)["version"] == 1 and last_json(first.output)["new"]
    again = runner.invoke(app, ["rules", "reload", *db])
    assert last_json(again.output)["version"] == 1 and not last_json(again.output)["new"]

    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN)
    refused = runner.invoke(app, ["rules", "reload", str(broken), *db])
    assert refused.exit_code == 1
    assert in_force.read_text() == GOOD  # the file in force is untouched

    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(BETTER)
    installed = runner.invoke(app, ["rules", "reload", str(candidate), *db])
    assert installed.exit_code == 0, installed.output
    assert last_json(installed.output)["version"] == 2
    assert in_force.read_text() == BETTER

    listed = runner.invoke(app, ["rules", "list", *db])
    assert listed.exit_code == 0
    figures = last_json(listed.output)
    assert (figures["file"], figures["version"], figures["shadow"]) == (str(in_force), 2, 1)

    history = runner.invoke(app, ["rules", "history", *db])
    assert [v["version"] for v in last_json(history.output)["versions"]] == [2, 1]
    assert last_json(history.output)["versions"][0]["source"].startswith("cli ")


def test_list_names_the_packaged_default_and_reload_refuses_to_overwrite_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VIGIL_RULES__PATH", raising=False)
    # A narrow terminal: the file line is printed whole (a path stays copyable), never wrapped,
    # wherever the package is installed.
    monkeypatch.setattr(rules_cli.console, "width", 40)
    db = ["--database", f"sqlite:///{tmp_path / 'v.db'}"]
    listed = runner.invoke(app, ["rules", "list", *db])
    assert listed.exit_code == 0
    assert f"file: {DEFAULT_RULES} (the packaged default" in listed.output
    assert last_json(listed.output)["file"] == str(DEFAULT_RULES)
    candidate = tmp_path / "c.yaml"
    candidate.write_text(GOOD)
    before = DEFAULT_RULES.read_text()
    refused = runner.invoke(app, ["rules", "reload", str(candidate), *db])
    assert refused.exit_code == 2 and DEFAULT_RULES.read_text() == before


def test_fields_lists_types() -> None:
    result = runner.invoke(app, ["rules", "fields", "card.withdrawal."])
    assert result.exit_code == 0
    assert "card.withdrawal.p95" in result.output
    assert last_json(result.output)["fields"] == 18  # 5 counts, 5 sums, n, 4 moments, 3 pXX
