"""The factual-consistency checker: sentences of a draft answer checked against their sources."""

from .checks import analyze, coverage, negation_count
from .ground import GroundingChecker, GroundingConfig
from .numbers import Quantity, extract_quantities, missing_quantities
from .split import split_draft, strip_markers
from .types import Citation, Grounded, Passage, SentenceCheck

__all__ = [
    "Citation",
    "Grounded",
    "GroundingChecker",
    "GroundingConfig",
    "Passage",
    "Quantity",
    "SentenceCheck",
    "analyze",
    "coverage",
    "extract_quantities",
    "missing_quantities",
    "negation_count",
    "split_draft",
    "strip_markers",
]
