"""Stop a streamed draft as soon as the model starts repeating itself.

guard = LoopGuard()
guard.feed("초3, 중1 단계이며, 초3은 ") -> False
guard.feed("초3, 중1 단계이며, 초3은 ...") -> True once a long enough span comes back

Small models sometimes loop ("…초3, 중1 단계이며, 초3은 …" until the token limit): every
repeated token costs time and the text is never an answer. The guard looks at the draft with
spaces squeezed: when its last `span` characters already occurred earlier in it, the model is
looping. A 24-character repeat is far longer than any phrase an answer repeats on purpose
("제4조", "15일"), and short enough to stop within two or three repeated words.
"""

from __future__ import annotations

import re

_SPACE = re.compile(r"\s+")
_MARKER = re.compile(r"\[\d+\]")


class LoopGuard:
    """Feed the draft's pieces in order; `feed` returns True once the draft repeats itself."""

    def __init__(self, span: int = 24) -> None:
        self.span = span
        self.text = ""
        self.looped = False

    def feed(self, piece: str) -> bool:
        if self.looped:
            return True
        self.text += piece
        # Citation markers repeat legitimately ("… [1]. … [1].") and never count.
        flat = _SPACE.sub(" ", _MARKER.sub("", self.text))
        if len(flat) >= 2 * self.span:
            tail = flat[-self.span:]
            self.looped = tail in flat[: -self.span]
        return self.looped
