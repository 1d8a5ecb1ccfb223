"""The factual-consistency checker: sentences of a draft answer checked against their sources."""

from .checks import analyze, coverage, negation_count
from .errors import CheckCancelled, GroundingError, ShouldStop
from .ground import WITHHELD, GroundingChecker, GroundingConfig, GroundingSession, render_sentence
from .numbers import Quantity, extract_quantities, missing_quantities
from .split import split_draft, strip_markers
from .types import Answer, Citation, Grounded, Passage, SentenceCheck

__all__ = [
    "Answer",
    "CheckCancelled",
    "Citation",
    "Grounded",
    "GroundingError",
    "GroundingChecker",
    "GroundingConfig",
    "GroundingSession",
    "Passage",
    "Quantity",
    "SentenceCheck",
    "ShouldStop",
    "WITHHELD",
    "analyze",
    "coverage",
    "extract_quantities",
    "missing_quantities",
    "negation_count",
    "render_sentence",
    "split_draft",
    "strip_markers",
]
