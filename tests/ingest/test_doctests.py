"""The examples in the importer modules' docstrings run and give what they show."""

import doctest
import importlib
import pkgutil

import pytest

import vigil.ingest

MODULES = sorted(m.name for m in pkgutil.iter_modules(vigil.ingest.__path__, "vigil.ingest."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
