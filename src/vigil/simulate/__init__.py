"""The synthetic bank: realistic cards, users and ATMs with labelled injected fraud.

>>> from vigil.simulate import BankConfig, PATTERNS
>>> BankConfig().cards, len(PATTERNS)
(2000, 7)
"""

from vigil.simulate.config import PATTERNS, BankConfig
from vigil.simulate.generator import FORMATS, GenerationSummary, generate

__all__ = ["FORMATS", "PATTERNS", "BankConfig", "GenerationSummary", "generate"]
