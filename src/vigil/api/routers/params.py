"""Path and query parameters shared by the read routes.

Ids are 1 to 128 characters without control characters (PostgreSQL refuses NUL in text, and no
id vigil stores contains one), so a malformed id is a 422 naming it, never a server error.

>>> import re; bool(re.match(ID_PATTERN, "c-0042")), bool(re.match(ID_PATTERN, "a\\x00b"))
(True, False)
"""

from __future__ import annotations

from vigil.domain.types import PRINTABLE as ID_PATTERN

ID_RULES = {"min_length": 1, "max_length": 128, "pattern": ID_PATTERN}
