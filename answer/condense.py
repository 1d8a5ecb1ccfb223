"""Turn a follow-up question plus the chat history into a standalone search query.

condense_rules("그럼 병가는요?", [Message("user", "연차휴가는 며칠인가요?"), ...], nouns)
  -> "연차휴가 병가는요?"   # the earlier question's nouns carry the missing topic
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence

from generation.errors import GenerationError
from generation.types import GenerationParams, Generator, Message
from prompts import ABSTAIN, build_condense_messages

log = logging.getLogger(__name__)

Nouns = Callable[[str], list[str]]

# Words that point back into the conversation ("그럼", "그것", "거기", "해당" ...).
_ANAPHORA = re.compile(r"(?:^|\s)(?:그럼|그러면|그렇다면|그건|그것|그거|이것|이거|저것|거기|여기|그때|그 |이 |해당|위의?|앞의?|또|다른)")
_SHORT_FOLLOW_UP = 12  # characters; "병가는요?" alone says too little to search


def needs_history(question: str) -> bool:
    return bool(_ANAPHORA.search(question)) or len(question.strip()) <= _SHORT_FOLLOW_UP


def condense_rules(question: str, history: Sequence[Message], nouns: Nouns) -> str:
    """Prefix the follow-up with the nouns of the previous user question it does not repeat."""
    previous = next((m.content for m in reversed(history) if m.role == "user"), "")
    if not previous or not needs_history(question):
        return question
    have = set(nouns(question))
    carried = [n for n in dict.fromkeys(nouns(previous)) if n not in have]
    return f"{' '.join(carried)} {question}".strip() if carried else question


def condense(
    question: str,
    history: Sequence[Message] | None,
    nouns: Nouns,
    generator: Generator | None = None,
) -> tuple[str, str]:
    """(standalone query, how: "none" | "llm" | "rules").

    The LLM rewrite is used when it looks like a question about the same things; anything
    else (an error, an empty or rambling line, an answer instead of a question) falls back
    to the rules.
    """
    if not history or not any(m.role == "user" for m in history):
        return question, "none"
    if generator is not None:
        try:
            text = generator.generate(
                build_condense_messages(question, history),
                GenerationParams(max_tokens=64, temperature=0.0),
            ).text
            line = _first_line(text)
            if _plausible(line, question, history, nouns):
                return line, "llm"
            log.info("condense: LLM rewrite %r rejected; using rules", line)
        except GenerationError as exc:
            log.warning("condense: LLM failed (%s); using rules", exc)
    return condense_rules(question, history, nouns), "rules"


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip().strip('"“”').strip()
        line = re.sub(r"^(?:독립된 질문|질문)\s*[:：]\s*", "", line)
        if line:
            return line
    return ""


def _plausible(line: str, question: str, history: Sequence[Message], nouns: Nouns) -> bool:
    if not line or ABSTAIN.rstrip(".") in line or len(line) > 3 * len(question) + 80:
        return False
    context = set(nouns(question)) | {n for m in history for n in nouns(m.content)}
    return bool(set(nouns(line)) & context)
