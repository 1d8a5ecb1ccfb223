"""Data of one generation call: chat messages in, text (or text pieces) out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Literal, Protocol, Sequence, runtime_checkable

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    """One chat turn, e.g. Message("user", "연차휴가는 며칠인가요?")."""

    role: Role
    content: str


@dataclass(frozen=True)
class GenerationParams:
    """Sampling parameters; low temperature by default because answers must stick to sources."""

    max_tokens: int = 256
    temperature: float = 0.1
    top_p: float = 0.9
    repeat_penalty: float = 1.1
    stop: tuple[str, ...] = ()
    seed: int | None = 0


@dataclass(frozen=True)
class Completion:
    """A finished generation: the text and how it ended ("stop", "length")."""

    text: str
    finish_reason: str = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    timings: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class Generator(Protocol):
    """A chat LLM. Backends: llama_cpp (default), transformers, openai_compat.

    `context_size` is the model's window in tokens and `count_tokens` measures text in the
    model's own tokens, so prompt builders can fit passages to the window.
    """

    model_id: str
    context_size: int

    def count_tokens(self, text: str) -> int: ...

    def generate(self, messages: Sequence[Message], params: GenerationParams | None = None) -> Completion: ...

    def stream(self, messages: Sequence[Message], params: GenerationParams | None = None) -> Iterator[str]: ...
