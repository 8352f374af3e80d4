"""The API's own pages work without the internet: ``/docs`` (Swagger UI) and ``/redoc`` load
every script, style and icon from vigil itself, none from a CDN."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import make_app
from vigil.storage import Store


class _Loads(HTMLParser):
    """The URLs a page loads: every ``<script src>`` and ``<link href>``."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href"}.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)


def loads(html: str) -> list[str]:
    parser = _Loads()
    parser.feed(html)
    return parser.urls


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    store = Store(f"sqlite:///{Path(tmp_path_factory.mktemp('docs')) / 'vigil.db'}")
    store.init_schema()
    yield TestClient(make_app(store))
    store.close()


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_every_script_and_style_of_the_page_is_served_by_the_app(
    client: TestClient, page: str
) -> None:
    response = client.get(page)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    urls = loads(response.text)
    assert any(url.endswith(".js") for url in urls), urls
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page} loads {url} from outside"
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url
    assert "http://" not in response.text and "https://" not in response.text
    # ReDoc's own script names an image on Redocly's CDN: the page forbids outside images.
    assert response.headers["content-security-policy"] == "img-src 'self' data:"


def test_the_pages_read_the_apps_openapi_document(client: TestClient) -> None:
    assert "url: '/openapi.json'" in client.get("/docs").text
    assert 'spec-url="/openapi.json"' in client.get("/redoc").text
    document = client.get("/openapi.json").json()
    assert document["openapi"].startswith("3.1")  # Swagger UI 5 is needed to show 3.1
    assert not any(path.startswith("/docs") or path == "/redoc" for path in document["paths"])


def test_a_missing_asset_is_404(client: TestClient) -> None:
    assert client.get("/docs/assets/nope.js").status_code == 404
