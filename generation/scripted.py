"""ScriptedGenerator: a deterministic Generator for fast tests of code that calls an LLM.

It answers from a script instead of a model, so a pipeline test can say exactly what the
"LLM" wrote and then check what the grounding step makes of it. It is for speed only: the
integration tests run the real backends.

    g = ScriptedGenerator(["연차휴가는 15일입니다 [1]."])
    g.generate([Message("user", "연차휴가는 며칠인가요?")]).text -> "연차휴가는 15일입니다 [1]."
    g.calls -> [[Message("user", "연차휴가는 며칠인가요?")]]
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence

from .errors import GenerationError
from .text import cut_at_stop
from .types import Completion, GenerationParams, Message

Script = list[str] | Callable[[list[Message]], str]


class ScriptedGenerator:
    """Replies from a list (in order, one per call) or from a function of the messages.

    Like a real backend it honours `max_tokens` (the reply is cut to fit, finish_reason
    "length"), `stop` strings and `context_size` (a prompt that does not fit raises
    GenerationError). Tokens are counted as len(text) // 2 + 1, so any text, even "",
    costs at least one token and a longer text never costs fewer.

    Args:
        replies: the script; a list runs out (GenerationError) after its last reply.
        context_size: window in tokens checked against the prompt.
        piece_chars: how many characters `stream` yields at a time.
    """

    model_id = "scripted"

    def __init__(self, replies: Script, context_size: int = 4096, *, piece_chars: int = 3):
        self.context_size = context_size
        self.calls: list[list[Message]] = []
        self._replies = replies if callable(replies) else list(replies)
        self._next = 0
        self._piece_chars = max(1, piece_chars)
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        """count_tokens("안녕하세요") -> 3."""
        return len(text) // 2 + 1

    def generate(self, messages: Sequence[Message], params: GenerationParams | None = None) -> Completion:
        """Record the call and return the next scripted reply, cut to max_tokens and stop."""
        params = params or GenerationParams()
        prompt_tokens = sum(self.count_tokens(m.content) for m in messages)
        text = self._reply(list(messages), prompt_tokens)
        # Like a real engine: tokens run out at max_tokens, and a stop string ends it earlier.
        finish = "stop"
        if self.count_tokens(text) > params.max_tokens:
            text, finish = text[: max(0, 2 * params.max_tokens - 1)], "length"
        text, stopped = cut_at_stop(text, params.stop)
        if stopped:
            finish = "stop"
        return Completion(text, finish, prompt_tokens, self.count_tokens(text))

    def stream(self, messages: Sequence[Message], params: GenerationParams | None = None) -> Iterator[str]:
        """The same text as `generate`, in pieces of `piece_chars` characters."""
        text = self.generate(messages, params).text
        step = self._piece_chars
        return iter([text[i : i + step] for i in range(0, len(text), step)])

    def _reply(self, messages: list[Message], prompt_tokens: int) -> str:
        if prompt_tokens > self.context_size:
            raise GenerationError(
                f"scripted: prompt of {prompt_tokens} tokens exceeds context_size {self.context_size}"
            )
        with self._lock:
            self.calls.append(messages)
            if callable(self._replies):
                return self._replies(messages)
            if self._next >= len(self._replies):
                raise GenerationError(f"scripted: all {len(self._replies)} replies were used")
            self._next += 1
            return self._replies[self._next - 1]
