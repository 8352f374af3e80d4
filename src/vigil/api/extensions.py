"""Where other packages plug admin routes into the API (rules, models, privacy, ...).

A package that wants admin routes exposes an ``APIRouter`` (or a function returning one) and is
listed in :data:`ADMIN_EXTENSIONS`. The app mounts each under ``/v1/admin`` behind the `admin`
role, so the package writes its routes without repeating the check. A listed module that is
not there (not built yet) is skipped; one that is there but fails to import is an error.

>>> [r.prefix for r in admin_routers([("vigil.no_such_package.api", "router")])]
[]
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from fastapi import APIRouter

# (module, attribute): e.g. vigil/rules/api.py defining `router = APIRouter(prefix="/rules")`.
ADMIN_EXTENSIONS: tuple[tuple[str, str], ...] = (
    ("vigil.rules.api", "router"),
    ("vigil.models.api", "router"),
)


def admin_routers(
    extensions: Iterable[tuple[str, str]] = ADMIN_EXTENSIONS,
) -> list[APIRouter]:
    found = []
    for module_name, attribute in extensions:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # Only the listed module itself (or its package) may be missing; a missing
            # dependency inside it is a real error.
            if exc.name is not None and module_name.startswith(exc.name):
                continue
            raise
        router = getattr(module, attribute)
        found.append(router() if callable(router) and not isinstance(router, APIRouter) else router)
    return found
