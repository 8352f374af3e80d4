"""Griffe extension for the API reference: vigil's docstrings are written in reST habits.

Markdown would show ``:class:`Store``` roles as they are and turn a doctest's ``>>>`` lines
into nested quotes, so before rendering: a role becomes inline code, ``double backticks``
become single ones, and each doctest block becomes a ``pycon`` code block. The docstrings
themselves stay as they are (pytest runs their doctests). Loaded by mkdocs.yml.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|data|attr|exc|obj|const):`~?([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")


def to_markdown(text: str) -> str:
    """The docstring ``text`` with reST roles, literals and doctests in Markdown.

    >>> print(to_markdown("Calls :meth:`Engine.process` on ``raw``.\\n>>> 1 + 1\\n2"))
    Calls `Engine.process` on `raw`.
    ```pycon
    >>> 1 + 1
    2
    ```
    """
    out: list[str] = []
    in_doctest = False
    for line in text.splitlines():
        starts = line.lstrip().startswith(">>>")
        if starts and not in_doctest:
            out.append("```pycon")
            in_doctest = True
        elif in_doctest and not line.strip():
            out.append("```")
            in_doctest = False
        if in_doctest:
            out.append(line)
        else:
            out.append(_LITERAL.sub(r"`\1`", _ROLE.sub(r"`\1`", line)))
    if in_doctest:
        out.append("```")
    return "\n".join(out)


class ReSTToMarkdown(griffe.Extension):
    """Rewrite every loaded object's docstring with :func:`to_markdown`."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)
