"""The factual-consistency checker: sentences of a draft answer checked against their sources."""

from .checks import analyze, coverage, negation_count
from .ground import GroundingChecker, GroundingConfig, GroundingSession, render_sentence
from .numbers import Quantity, extract_quantities, missing_quantities
from .split import split_draft, strip_markers
from .types import Answer, Citation, Grounded, Passage, SentenceCheck

__all__ = [
    "Answer",
    "Citation",
    "Grounded",
    "GroundingChecker",
    "GroundingConfig",
    "GroundingSession",
    "Passage",
    "Quantity",
    "SentenceCheck",
    "analyze",
    "coverage",
    "extract_quantities",
    "missing_quantities",
    "negation_count",
    "render_sentence",
    "split_draft",
    "strip_markers",
]
