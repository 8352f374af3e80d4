"""evaluation.json and report.html: written, strict JSON, offline, holding the figures."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import plotly
import polars as pl
import pytest

from tests.evaluate.scenario import minutes
from vigil.evaluate import evaluate, write_report


class _Tags(HTMLParser):
    """Every tag with its attributes; script and style bodies are kept apart as data."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


@pytest.fixture
def written(tmp_path: Path, decisions, labels, terminals) -> tuple[Path, Path, object]:
    events = pl.DataFrame(
        {
            "event_id": ["s0", "e0", "s1", "e1"],
            "transaction_id": ["t0", "t0", "t1", "t1"],
            "timestamp": [minutes(-60), minutes(-56), minutes(0), minutes(5)],
            "card_id": ["c-1"] * 4,
            "terminal_id": ["B-1", "B-1", "EXT-1", "EXT-1"],
        }
    )
    result = evaluate(decisions, labels, events=events)
    json_path, html_path = write_report(
        result, tmp_path / "report", terminals=terminals, title="Demo <bank>"
    )
    return json_path, html_path, result


def test_both_files_written_with_the_returned_paths(written, tmp_path) -> None:
    json_path, html_path, _ = written
    assert json_path == tmp_path / "report" / "evaluation.json"
    assert html_path == tmp_path / "report" / "report.html"
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == [
        "evaluation.json",
        "report.html",
    ]


def test_evaluation_json_round_trips(written) -> None:
    json_path, _, result = written
    loaded = json.loads(json_path.read_text(), parse_constant=pytest.fail)
    assert loaded == result.as_dict()
    assert loaded["overall"]["precision"] == 0.75
    assert loaded["patterns"]["card_cloning"]["delay_median_seconds"] == 300.0
    assert json.loads(json.dumps(loaded)) == loaded


def test_report_loads_nothing_from_the_network(written) -> None:
    _, html_path, _ = written
    page = html_path.read_text(encoding="utf-8")
    parser = _Tags()
    parser.feed(page)
    external = [
        (tag, name, value)
        for tag, attrs in parser.tags
        for name, value in attrs.items()
        if name in {"src", "href"} and value and re.match(r"^\s*(https?:)?//", value)
    ]
    assert external == []
    assert not any(tag in {"link", "iframe", "img"} for tag, _ in parser.tags)
    assert all("src" not in attrs for tag, attrs in parser.tags if tag == "script")
    # plotly.js is embedded exactly once, inline, and no map tiles or topojson are asked for.
    bundles = [s for s in parser.scripts if f"plotly.js v{plotly.__version__}"[:9] in s[:400]]
    assert len(bundles) == 1 and len(bundles[0]) > 1_000_000
    figures = "".join(s for s in parser.scripts if s not in bundles)
    assert "Plotly.newPlot" in figures
    assert not re.search(r"https?://", figures)
    assert '"type":"scattergeo"' not in figures and "mapbox" not in figures


def test_report_shows_the_figures_an_analyst_reads(written) -> None:
    _, html_path, _ = written
    page = html_path.read_text(encoding="utf-8")
    assert "<title>Demo &lt;bank&gt;</title>" in page  # titles are escaped
    for text in (
        "Per injected pattern",
        "card_cloning",
        "lost_card",
        "account_takeover",
        "32.0 min",  # lost_card's median delay, 1,920 s
        "Per reason code",
        "velocity_burst",
        "Top 50 alerts by score",
        "impossible-travel legs (1)",
        "Score distribution: fraud vs legitimate",
        "Precision–recall of the score",
        "Recall per injected pattern",
        "1 labelled fraud unit(s) have no decision",
    ):
        # Chart titles live in plotly's JSON, ASCII-escaped unless orjson is installed.
        escaped = text.encode("ascii", "backslashreplace").decode()
        assert text in page or escaped in page, text
    top = page[page.index("Top 50 alerts by score") :]
    rows = re.findall(r"<tr><td>(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)</td><td>([^<]+)</td>", top)
    # The 8 alerts, highest score first: t1 0.95, t7 0.92, then t5 before t8 (same score and
    # action, earlier start), t10, t4, l1, t11.
    assert [unit for _, unit in rows] == ["t1", "t7", "t5", "t8", "t10", "t4", "l1", "t11"]


def test_report_without_terminals_uses_stream_coordinates(tmp_path, decisions, labels) -> None:
    events = pl.DataFrame(
        {
            "event_id": ["e1", "e4"],
            "transaction_id": ["t1", "t4"],
            "timestamp": [minutes(5), minutes(64)],
            "terminal_id": ["EXT-1", "B-2"],
            "latitude": [9.06, 6.60],
            "longitude": [7.49, 3.35],
        }
    )
    result = evaluate(decisions, labels, events=events)
    _, html_path = write_report(result, tmp_path)
    page = html_path.read_text(encoding="utf-8")
    assert "fraud alerts" in page and "no terminal coordinates given" not in page
    _, bare = write_report(evaluate(decisions, labels), tmp_path / "bare")
    assert "no terminal coordinates given" in bare.read_text(encoding="utf-8")


def test_rewriting_replaces_the_files(written, decisions, labels) -> None:
    json_path, html_path, _ = written
    write_report(
        evaluate(decisions.filter(pl.col("event_kind") == "login"), labels), json_path.parent
    )
    assert json.loads(json_path.read_text())["overall"]["units"] == 6
    assert "· 6 units ·" in html_path.read_text(encoding="utf-8")
    assert sorted(p.name for p in json_path.parent.iterdir()) == [
        "evaluation.json",
        "report.html",
    ]
