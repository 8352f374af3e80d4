"""The README stays a first hour's reading and points at pages that exist; the API reference's
docstring conversion (docs/griffe_rst.py) keeps code and doctests intact. The site itself is
built by .ci/run (`mkdocs build --strict`), which fails on any broken link inside docs/."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_readme_is_under_8_kb() -> None:
    # 8,000 bytes, not 8 KiB: the bound read the strict way, so no edit lands between.
    assert len(README.read_bytes()) < 8_000


def test_every_relative_link_of_the_readme_names_a_file_of_the_repository() -> None:
    links = [link for link in LINK.findall(README.read_text()) if "://" not in link]
    assert any(link.startswith("docs/") for link in links)
    for link in links:
        target = (ROOT / link.split("#")[0]).resolve()
        assert target.is_relative_to(ROOT) and target.is_file(), link


def test_ci_runs_the_readmes_test_command_word_for_word() -> None:
    command = 'python -m pip install -c requirements/dev.lock -e ".[dev]" && python -m pytest'
    assert command in README.read_text()
    assert command in (ROOT / ".ci" / "run").read_text()


def _griffe_rst() -> ModuleType:
    spec = importlib.util.spec_from_file_location("griffe_rst", ROOT / "docs" / "griffe_rst.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rest_roles_literals_and_doctests_become_markdown() -> None:
    to_markdown = _griffe_rst().to_markdown
    text = "Calls :meth:`Engine.process` on ``raw``.\n\n>>> 1 + 1\n2\n\nThen :class:`~a.B`."
    assert to_markdown(text) == (
        "Calls `Engine.process` on `raw`.\n\n```pycon\n>>> 1 + 1\n2\n```\n\nThen `a.B`."
    )
    # Inside a doctest nothing changes, and a doctest that ends the text is closed.
    assert to_markdown(">>> f(``x``)") == "```pycon\n>>> f(``x``)\n```"
