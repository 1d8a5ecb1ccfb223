"""Small text helpers shared by the backends: chat dicts, stop strings, streamed pieces.

Backends whose engine already honours stop strings (llama.cpp, OpenAI-compatible servers)
only need `to_chat_dicts`; the others (transformers, the scripted fake) cut the text
themselves with `cut_at_stop` and `stream_until_stop`, which follow the OpenAI rule: the
stop string itself is not part of the answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from .types import Message


def to_chat_dicts(messages: Sequence[Message]) -> list[dict[str, str]]:
    """[Message("user", "안녕하세요")] -> [{"role": "user", "content": "안녕하세요"}]."""
    return [{"role": m.role, "content": m.content} for m in messages]


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut `text` before the earliest stop string; the flag says whether one was found.

    cut_at_stop("15일입니다.\\n출처: [1]", ["\\n"]) -> ("15일입니다.", True)
    """
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    if not cuts:
        return text, False
    return text[: min(cuts)], True


def stream_until_stop(pieces: Iterable[str], stop: Sequence[str]) -> Iterator[str]:
    """Yield `pieces` up to (not including) the first stop string, even one split across pieces.

    Text that could be the start of a stop string is held back until the next piece decides.
    list(stream_until_stop(["15일", "입니다.\\n", "출처"], ["\\n"])) -> ["15일", "입니다."]
    """
    stops = [s for s in stop if s]
    if not stops:
        yield from (p for p in pieces if p)
        return
    pending = ""
    for piece in pieces:
        pending += piece
        head, found = cut_at_stop(pending, stops)
        if found:
            # A longer stop string that starts before this one may still be completed by the
            # next pieces (stops "가" and "\n가가", text "\n가" so far): hold from its start.
            start = _earliest_open_stop(pending, stops, before=len(head))
            if start is None:
                if head:
                    yield head
                return
            ready, pending = pending[:start], pending[start:]
        else:
            keep = _longest_stop_prefix_suffix(pending, stops)
            ready, pending = pending[: len(pending) - keep], pending[len(pending) - keep :]
        if ready:
            yield ready
    pending = cut_at_stop(pending, stops)[0]
    if pending:
        yield pending


def _earliest_open_stop(text: str, stops: Sequence[str], before: int) -> int | None:
    """Smallest i < before where text[i:] is the start of a longer stop string, else None."""
    for i in range(before):
        tail = text[i:]
        if any(len(s) > len(tail) and s.startswith(tail) for s in stops):
            return i
    return None


def _longest_stop_prefix_suffix(text: str, stops: Sequence[str]) -> int:
    """Length of the longest end of `text` that begins some stop string ("답변:", ["\\n\\n"] -> 0)."""
    best = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:n]):
                best = n
                break
    return best
