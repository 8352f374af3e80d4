"""Rendering a workbench page: the Jinja2 templates shipped in the package, with the headers
every page gets (no caching of case data, no framing, scripts and styles from vigil only)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from vigil.web import charts

# htmx is served by vigil itself; its inline indicator styles are turned off (base.html), so a
# strict policy holds. Inline SVG is markup, not an image fetch.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def when(value: datetime | None, seconds: bool = False) -> str:
    """A time as the workbench shows it: UTC, to the minute (or second).

    >>> when(datetime(2024, 5, 1, 10, 15, 7, tzinfo=UTC)), when(None)
    ('2024-05-01 10:15', '—')
    """
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def money(value: Any) -> str:
    """An amount in major units, with thousands separated.

    >>> money(1234.5), money(None)
    ('1,234.50', '—')
    """
    return "—" if value is None else f"{float(value):,.2f}"


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("vigil.web", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["money"] = money
    env.globals["hours_chart"] = charts.hours
    return env


def page(
    request: Request, template: str, context: dict[str, Any], status: int = 200
) -> HTMLResponse:
    """``template`` rendered with ``context`` (plus the request and the page's path)."""
    html = (
        environment()
        .get_template(template)
        .render(request=request, path=request.url.path, **context)
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)
