"""A real ``vigil serve`` on a small demo store, and a real headless Chromium (Debian's
``/usr/bin/chromium``, driven by Playwright; never a downloaded browser) for the workbench tests.

The server and the store are shared by the module's tests (a demo takes seconds to make), so
each test works on cases of its own. Screenshots go to ``build/screenshots/`` (or
``VIGIL_SCREENSHOTS``), one per page, at 1400×1000.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vigil.api.keys import KeyRing, Role
from vigil.cli import app
from vigil.storage import Store

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1400, "height": 1000}
SCREENSHOTS = Path(os.environ.get("VIGIL_SCREENSHOTS", "build/screenshots"))
VIGIL = [sys.executable, "-c", "from vigil.cli import app; app()"]


@dataclass(frozen=True)
class Served:
    url: str
    database: str
    keys: dict[str, str]
    demo: Path

    def api(self, path: str, role: str = "analyst") -> dict[str, Any]:
        request = urllib.request.Request(self.url + path, headers={"X-API-Key": self.keys[role]})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _started(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    server.kill()
    server.wait()
    pytest.fail(f"vigil serve did not start: {log.read_text()}")


def _registry(root: Path) -> Path:
    """A registry holding one small logistic model with its test scores (a model report)."""
    from datetime import UTC, datetime, timedelta

    import polars as pl

    from vigil.models.linear import LinearModel
    from vigil.models.model import Model
    from vigil.models.registry import Registry

    scorer = LinearModel(
        ["amount_z", "hour"],
        fill=[0.0, 12.0],
        mean=[0.0, 12.0],
        scale=[1.0, 6.0],
        coef=[1.2, 0.1],
        intercept=-3.0,
    )
    day = datetime(2022, 1, 1, tzinfo=UTC)
    scores = pl.DataFrame(
        {
            "timestamp": [day + timedelta(hours=i) for i in range(40)],
            "card_id": [f"c-{i % 7}" for i in range(40)],
            "label": [int(i % 9 == 0) for i in range(40)],
            "score": [((i * 37) % 100) / 100 for i in range(40)],
        }
    )
    manifest = {
        "metrics": {"test": {"roc_auc": 0.81, "average_precision": 0.42}},
        "importance": {"amount_z": 1.2, "hour": 0.1},
        "parameters": {"k": 3},
    }
    model = Model("transaction", "logreg", scorer, calibration=(1.0, 0.0))
    Registry(root).save(model, manifest, test_scores=scores)
    return root


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``vigil demo`` (small), keys for an analyst, an admin and a teller, then ``vigil serve``."""
    folder = tmp_path_factory.mktemp("workbench")
    demo = CliRunner().invoke(
        app, ["demo", "--out", str(folder / "demo"), "--cards", "300", "--days", "14"]
    )
    assert demo.exit_code == 0, demo.output
    database = f"sqlite:///{folder / 'demo' / 'vigil.db'}"
    # The demo ends by saying how to open the workbench on its store, with a working key.
    assert f"vigil serve --database {database}" in demo.output.replace("\n", " ")
    printed = re.search(r"vgl_[0-9a-f]{16}_[A-Za-z0-9_-]+", demo.output)
    with Store(database) as store:
        ring = KeyRing(store)
        assert printed is not None and Role.ANALYST in ring.verify(printed.group()).roles
        keys = {
            "analyst": ring.create("ann", ["analyst"])[0],
            "admin": ring.create("root", ["admin"])[0],
            "ingest": ring.create("teller", ["ingest"])[0],
        }
    registry = _registry(folder / "models")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (folder / "serve.log").open("wb")  # a file, not a pipe nobody reads until the end
    server = subprocess.Popen(
        [*VIGIL, "serve", "--database", database, "--port", str(port)],
        env={**os.environ, "VIGIL_DEV": "1", "VIGIL_MODELS__REGISTRY_DIR": str(registry)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _started(url, server, folder / "serve.log")
        yield Served(url, database, keys, folder / "demo")
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium, for one test module. Not for the session: Playwright's synchronous API runs
    an event loop in the main thread while it is open, and the doctests collected after the
    browser tests (``asyncio.run`` in ``vigil.api.service``) then find a loop running."""
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is not installed (apt-get install chromium; .ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) at 1400×1000; any request that leaves the server
    under test fails the test (the workbench fetches nothing from elsewhere)."""
    context = browser.new_context(viewport=VIEWPORT)
    opened = context.new_page()
    foreign: list[str] = []
    opened.on(
        "request",
        lambda r: (
            None
            if r.url.startswith(("http://127.0.0.1", "data:", "file:"))
            else foreign.append(r.url)
        ),
    )
    yield opened
    context.close()
    assert foreign == []


def shot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
