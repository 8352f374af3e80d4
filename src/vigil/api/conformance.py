"""What the OpenAPI document promises about a path, applied to the requests that reach it.

Built once, lazily, from the app's own document, so the code and its documentation cannot
drift: the methods a path allows (a 405 answers them all in ``Allow``; FastAPI names only those
of the first route it matched, so ``GET`` alone for ``/v1/risk-events/{id}``, which also takes
``PATCH``) and the query parameters an operation takes (an unknown one is refused, 422 naming
it, instead of being silently ignored: a misspelt filter would otherwise widen a query; and one
that is not a list, given twice, is refused rather than the last silently winning, as with
duplicate JSON keys), and the roles it requires (the scopes of its security requirement).

>>> paths = {"/v1/risk-events/{risk_event_id}": {"get": {"parameters": [
...     {"name": "fields", "in": "query"}], "security": [{"ApiKey": ["analyst"]}]},
...     "patch": {}}}
>>> doc = Conformance.from_openapi({"paths": paths})
>>> doc.allowed("/v1/risk-events/12"), doc.allowed("/nowhere")
('GET, PATCH', None)
>>> doc.unknown_query("GET", "/v1/risk-events/12", ["fields", "limti"])
['limti']
>>> doc.repeated_query("GET", "/v1/risk-events/12", ["fields", "fields"])
['fields']
>>> doc.roles("GET", "/v1/risk-events/12"), doc.roles("PATCH", "/v1/risk-events/12")
(('analyst',), ())
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@dataclass(frozen=True)
class _Path:
    pattern: re.Pattern[str]
    query: dict[str, frozenset[str]]  # METHOD -> query parameter names
    lists: dict[str, frozenset[str]]  # METHOD -> those that take several values
    roles: dict[str, tuple[str, ...]]  # METHOD -> the roles its security requirements name


def _is_list(parameter: dict[str, Any]) -> bool:
    schema = parameter.get("schema", {})
    return schema.get("type") == "array" or any(
        s.get("type") == "array" for s in schema.get("anyOf", ())
    )


@dataclass(frozen=True)
class Conformance:
    paths: tuple[_Path, ...]

    @classmethod
    def from_openapi(cls, document: dict[str, Any]) -> Conformance:
        paths = []
        for template, operations in document.get("paths", {}).items():
            pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
            query, lists, roles = {}, {}, {}
            for method, operation in operations.items():
                if method not in _METHODS:
                    continue
                params = [p for p in operation.get("parameters", []) if p.get("in") == "query"]
                query[method.upper()] = frozenset(p["name"] for p in params)
                lists[method.upper()] = frozenset(p["name"] for p in params if _is_list(p))
                needed = {r for s in operation.get("security", ()) for v in s.values() for r in v}
                roles[method.upper()] = tuple(sorted(needed))
            paths.append(_Path(pattern, query, lists, roles))
        return cls(tuple(paths))

    def _match(self, path: str) -> _Path | None:
        return next((p for p in self.paths if p.pattern.match(path)), None)

    def allowed(self, path: str) -> str | None:
        """The ``Allow`` value of a documented path (every method it takes), else None."""
        found = self._match(path)
        return ", ".join(sorted(found.query)) if found is not None else None

    def roles(self, method: str, path: str) -> tuple[str, ...]:
        """The roles an operation's security requirements name (their scopes: the key must
        hold each); none for an undocumented one."""
        found = self._match(path)
        return () if found is None else found.roles.get(method, ())

    @classmethod
    def of(cls, app: Any) -> Conformance:
        """The app's, built from its OpenAPI document on first use and kept on its state."""
        found = getattr(app.state, "conformance", None)
        if found is None:
            found = app.state.conformance = cls.from_openapi(app.openapi())
        return found

    def unknown_query(self, method: str, path: str, names: Iterable[str]) -> list[str]:
        """The query parameters a documented operation does not take (none if undocumented)."""
        found = self._match(path)
        known = found.query.get(method) if found is not None else None
        if known is None:
            return []
        return sorted({n for n in names if n not in known})

    def repeated_query(self, method: str, path: str, names: Iterable[str]) -> list[str]:
        """The query parameters given more than once that take one value."""
        found = self._match(path)
        lists = found.lists.get(method, frozenset()) if found is not None else frozenset()
        seen: set[str] = set()
        repeated = set()
        for name in names:
            if name in seen and name not in lists:
                repeated.add(name)
            seen.add(name)
        return sorted(repeated)
