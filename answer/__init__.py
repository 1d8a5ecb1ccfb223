"""The answering stage: question → passages → draft → checked Answer, streamed sentence by sentence.

It sits beside grounding/ (which checks each sentence) and imports none of app/; the pipeline
in app/ wires it to the retriever and the models.
"""

from .compose import ComposeConfig, Composer
from .condense import condense, condense_rules, needs_history
from .loop import LoopGuard
from .parts import Part, split_question
from .select import SelectConfig, Selection, select_units, source_units
from .run import AnswerRun, KiwiFocus, StreamEvent, final_answer, history_messages, noun_extractor

__all__ = [
    "AnswerRun",
    "ComposeConfig",
    "Composer",
    "LoopGuard",
    "Part",
    "SelectConfig",
    "Selection",
    "KiwiFocus",
    "StreamEvent",
    "condense",
    "condense_rules",
    "final_answer",
    "history_messages",
    "needs_history",
    "noun_extractor",
    "select_units",
    "source_units",
    "split_question",
]
