"""LlamaCppGenerator: a GGUF model run in-process by llama-cpp-python (the default backend).

The prompt is built by the GGUF's own chat template (llama-cpp-python reads
`tokenizer.chat_template` from the file), so a Qwen, Gemma or Llama file each gets its
own format without code here knowing about it.

    g = LlamaCppGenerator(Path("~/.cache/chulcheo/models/qwen2.5-coder-0.5b-instruct.gguf"))
    g.generate([Message("user", "다음 문장을 그대로 따라 쓰세요: 안녕하세요")]).text -> "안녕하세요"
    g.model_id -> "qwen2.5-coder-0.5b-instruct.gguf:491400064"
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import BackendUnavailableError, GenerationError
from .text import to_chat_dicts
from .types import Completion, GenerationParams, Message

logger = logging.getLogger(__name__)

PIP_HINT = 'pip install "llama-cpp-python==0.3.36"  (compiles llama.cpp; needs gcc and cmake)'


class LlamaCppGenerator:
    """A GGUF file loaded on first use (or by `warm_up()`), one call at a time.

    A llama.cpp context is not re-entrant, so every call holds a lock; `stream` holds it
    until its iterator is exhausted or closed (a `for` loop that breaks closes it when the
    iterator is garbage-collected, so close it explicitly when in doubt).

    Args:
        model_path: the .gguf file; a missing file raises GenerationError naming it.
        context_size: n_ctx, prompt plus answer, in tokens.
        threads: CPU threads for decoding; None uses every core (os.cpu_count()).
        verbose: let llama.cpp write its own load/timing log to stderr.
        extra_buffers: let llama.cpp repack weights into its "extra" buffer types (AMX,
            CPU repack). None = off when the build has AMX kernels (see `without_extra_buffers`).

    Raises:
        GenerationError: the file does not exist.
        BackendUnavailableError: llama-cpp-python is not installed (raised at load time).
    """

    def __init__(
        self,
        model_path: Path,
        *,
        context_size: int = 4096,
        threads: int | None = None,
        verbose: bool = False,
        extra_buffers: bool | None = None,
    ):
        self.model_path = Path(model_path).expanduser()
        if not self.model_path.is_file():
            raise GenerationError(f"llama_cpp: model file not found: {self.model_path}")
        self.context_size = context_size
        self.threads = threads or os.cpu_count() or 1
        self.verbose = verbose
        self.extra_buffers = extra_buffers
        # File name + size: cheap, and enough to tell the registered models apart.
        self.model_id = f"{self.model_path.name}:{self.model_path.stat().st_size}"
        self._llama: Any = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the model now instead of on the first call (takes ~1 s for 0.5B, mmap)."""
        with self._lock:
            self._load()

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` in the model's own vocabulary, without BOS: count_tokens("안녕하세요") -> 3."""
        with self._lock:
            llama = self._load()
            return len(llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def generate(self, messages: Sequence[Message], params: GenerationParams | None = None) -> Completion:
        """Run the chat template and decode one answer."""
        p = params or GenerationParams()
        started = time.monotonic()
        with self._lock:
            llama = self._load()
            try:
                result = llama.create_chat_completion(messages=to_chat_dicts(messages), **_sampling(p))
            except (ValueError, RuntimeError) as exc:  # e.g. "Requested tokens exceed context window"
                raise GenerationError(f"llama_cpp ({self.model_path.name}): {exc}") from exc
        choice = result["choices"][0]
        usage = result.get("usage") or {}
        return Completion(
            choice["message"].get("content") or "",
            choice.get("finish_reason") or "stop",
            usage.get("prompt_tokens"),
            usage.get("completion_tokens"),
            {"total_s": time.monotonic() - started},
        )

    def stream(self, messages: Sequence[Message], params: GenerationParams | None = None) -> Iterator[str]:
        """Yield the answer as it is decoded; the pieces join to what `generate` returns."""
        p = params or GenerationParams()
        with self._lock:
            llama = self._load()
            try:
                chunks = llama.create_chat_completion(messages=to_chat_dicts(messages), stream=True, **_sampling(p))
                for chunk in chunks:
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        yield piece
            except (ValueError, RuntimeError) as exc:
                raise GenerationError(f"llama_cpp ({self.model_path.name}): {exc}") from exc

    def _load(self) -> Any:
        """The Llama object, created on first use; the caller holds the lock."""
        if self._llama is not None:
            return self._llama
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise BackendUnavailableError(f"generation backend llama_cpp needs llama-cpp-python: {PIP_HINT}") from exc
        extra = self.extra_buffers if self.extra_buffers is not None else not build_has_amx()
        started = time.monotonic()
        try:
            with contextlib.nullcontext() if extra else without_extra_buffers():
                self._llama = Llama(
                    model_path=str(self.model_path),
                    n_ctx=self.context_size,
                    n_threads=self.threads,
                    verbose=self.verbose,
                )
        except (ValueError, RuntimeError) as exc:  # not a GGUF, unsupported architecture, no memory
            raise GenerationError(f"llama_cpp: cannot load {self.model_path}: {exc}") from exc
        logger.info(
            "llama_cpp: loaded %s (n_ctx=%d, threads=%d, extra buffers %s) in %.1fs",
            self.model_path.name, self.context_size, self.threads, "on" if extra else "off",
            time.monotonic() - started,
        )
        return self._llama


def _sampling(p: GenerationParams) -> dict[str, Any]:
    """GenerationParams -> create_chat_completion keywords (temperature 0 decodes greedily)."""
    return {
        "max_tokens": p.max_tokens,
        "temperature": p.temperature,
        "top_p": p.top_p,
        "repeat_penalty": p.repeat_penalty,
        "stop": list(p.stop) or None,
        "seed": p.seed,
    }


def build_has_amx() -> bool:
    """True if the installed llama.cpp was compiled with AMX kernels ("AMX_INT8 = 1" in its system info).

    A build compiled with -march=native on a CPU that advertises AMX gets them, and on a VM
    that advertises AMX without letting guests use it (Firecracker here), the first
    multi-token decode dies with SIGSEGV on `ldtilecfg` inside ggml_backend_amx_mul_mat.
    """
    import llama_cpp

    return b"AMX_INT8 = 1" in llama_cpp.llama_print_system_info()


_PARAMS_LOCK = threading.Lock()


@contextlib.contextmanager
def without_extra_buffers() -> Iterator[None]:
    """Models loaded inside this block get use_extra_bufts=False (no AMX, no weight repacking).

    Llama() takes no such argument, so its source of default model parameters is wrapped for
    the duration of the block. Also used to start llama-cpp-python's server in the tests:
        with without_extra_buffers(): runpy.run_module("llama_cpp.server", run_name="__main__")
    """
    import llama_cpp.llama_cpp as low_level

    with _PARAMS_LOCK:
        original = low_level.llama_model_default_params

        def defaults() -> Any:
            params = original()
            params.use_extra_bufts = False
            return params

        low_level.llama_model_default_params = defaults
        try:
            yield
        finally:
            low_level.llama_model_default_params = original
