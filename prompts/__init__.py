"""Korean prompt templates and the builders that number sources and fit them to the window."""

from .build import (
    Focus,
    QAPrompt,
    build_condense_messages,
    build_qa_messages,
    build_unit_messages,
    fit_passages,
    focus_passages,
    not_found_note,
    passage_title,
)
from .injection import instruction_spans, is_instruction, neutralize
from .templates import ABSTAIN

__all__ = [
    "ABSTAIN",
    "Focus",
    "QAPrompt",
    "build_condense_messages",
    "build_qa_messages",
    "build_unit_messages",
    "fit_passages",
    "focus_passages",
    "instruction_spans",
    "is_instruction",
    "neutralize",
    "not_found_note",
    "passage_title",
]
