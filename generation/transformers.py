"""TransformersGenerator: a chat model run by Hugging Face transformers on the CPU.

For checkpoints llama.cpp cannot run, or a local model mirror in safetensors form. A .gguf
file works too: transformers dequantizes it to float32 on load (needs `gguf` and `accelerate`),
which costs ~4 bytes per parameter of RAM and a slower decode than llama.cpp.

    g = TransformersGenerator("/models/qwen2.5-coder-0.5b-instruct.gguf", threads=2)
    g.generate([Message("user", "다음 문장을 그대로 따라 쓰세요: 안녕하세요")]).text -> "안녕하세요"
    g.model_id -> "qwen2.5-coder-0.5b-instruct.gguf"
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import BackendUnavailableError, GenerationError
from .text import cut_at_stop, stream_until_stop, to_chat_dicts
from .types import Completion, GenerationParams, Message

logger = logging.getLogger(__name__)


class TransformersGenerator:
    """A checkpoint directory, a .gguf file or a Hugging Face id, loaded on first use.

    Decodes greedily when temperature == 0, otherwise samples with the seed set on torch's
    global generator (calls are serialized by a lock, so seeds do not interfere).

    Args:
        model: a checkpoint directory, a .gguf path, or an id for a configured HF mirror.
        context_size: window checked against prompt + max_tokens.
        threads: torch intra-op threads, set at load time (process-wide); None leaves torch's default.

    Raises:
        GenerationError: a local path (a .gguf, or anything path-like) that does not exist.
    """

    def __init__(self, model: str | Path, *, context_size: int = 4096, threads: int | None = None):
        path = Path(model).expanduser()
        looks_local = path.suffix == ".gguf" or path.is_absolute() or str(model).startswith((".", "~"))
        if looks_local and not path.exists():
            raise GenerationError(f"transformers: model not found: {path}")
        self.source = path if path.exists() else None
        self.model = str(path) if self.source else str(model)
        self.model_id = path.name if self.source else str(model)
        self.context_size = context_size
        self.threads = threads
        self._tokenizer: Any = None
        self._model: Any = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load tokenizer and weights now.

        The 0.5B Q4_K_M GGUF took 60–64 s on 2 busy cores (converting the tokenizer and
        dequantizing 291 tensors) and peaked at 3.8 GB RSS; a safetensors directory loads faster.
        """
        with self._lock:
            self._load()

    def count_tokens(self, text: str) -> int:
        """count_tokens("안녕하세요") -> 3 with Qwen2.5's tokenizer."""
        with self._lock:
            tokenizer, _ = self._load()
            return len(tokenizer.encode(text, add_special_tokens=False))

    def generate(self, messages: Sequence[Message], params: GenerationParams | None = None) -> Completion:
        """Apply the chat template, decode, and cut the answer at the first stop string."""
        p = params or GenerationParams()
        started = time.monotonic()
        with self._lock:
            tokenizer, model = self._load()
            inputs, kwargs = self._prepare(messages, p)
            output = _run(model.generate, **inputs, **kwargs)
        prompt_len = inputs["input_ids"].shape[1]
        new_ids = output[0][prompt_len:]
        text = tokenizer.decode(new_ids, skip_special_tokens=True)
        text, stopped = cut_at_stop(text, p.stop)
        ended = stopped or (len(new_ids) > 0 and int(new_ids[-1]) in _eos_ids(model))
        return Completion(
            text,
            "stop" if ended or len(new_ids) < p.max_tokens else "length",
            prompt_len,
            len(new_ids),
            {"total_s": time.monotonic() - started},
        )

    def stream(self, messages: Sequence[Message], params: GenerationParams | None = None) -> Iterator[str]:
        """Decode in a worker thread and yield text as TextIteratorStreamer releases it."""
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        p = params or GenerationParams()
        with self._lock:
            tokenizer, model = self._load()
            inputs, kwargs = self._prepare(messages, p)
            streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
            cancel = threading.Event()
            failure: list[BaseException] = []

            def work() -> None:
                try:
                    criteria = StoppingCriteriaList([_cancelled_when(cancel)])
                    _run(model.generate, **inputs, **kwargs, streamer=streamer, stopping_criteria=criteria)
                except BaseException as exc:  # noqa: BLE001 — handed to the consuming thread
                    failure.append(exc)
                    streamer.end()

            worker = threading.Thread(target=work, name="transformers-generate", daemon=True)
            worker.start()
            try:
                yield from stream_until_stop(streamer, p.stop)
            finally:
                # A stop string or a consumer that closes us early: end the decode loop at
                # the next token, and keep the lock until the worker has left the model.
                cancel.set()
                worker.join()
            if failure:
                raise failure[0]  # _run already turned torch errors into GenerationError

    def _prepare(self, messages: Sequence[Message], p: GenerationParams) -> tuple[dict, dict]:
        """Tokenized chat prompt and generate() keywords; the caller holds the lock."""
        import torch

        tokenizer = self._tokenizer
        inputs = tokenizer.apply_chat_template(
            to_chat_dicts(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        prompt_len = inputs["input_ids"].shape[1]
        if prompt_len + p.max_tokens > self.context_size:
            raise GenerationError(
                f"transformers ({self.model_id}): prompt of {prompt_len} tokens + max_tokens "
                f"{p.max_tokens} exceeds context_size {self.context_size}"
            )
        kwargs: dict[str, Any] = {
            "max_new_tokens": p.max_tokens,
            "repetition_penalty": p.repeat_penalty,
            "pad_token_id": tokenizer.pad_token_id or tokenizer.eos_token_id,
        }
        if p.temperature > 0:
            kwargs.update(do_sample=True, temperature=p.temperature, top_p=p.top_p)
            if p.seed is not None:
                torch.manual_seed(p.seed)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if p.stop:
            # Ends decoding at a stop string; the text is cut before it afterwards.
            kwargs.update(stop_strings=list(p.stop), tokenizer=tokenizer)
        return dict(inputs), kwargs

    def _load(self) -> tuple[Any, Any]:
        """(tokenizer, model), loaded on first use; the caller holds the lock."""
        if self._model is not None:
            return self._tokenizer, self._model
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise BackendUnavailableError(
                "generation backend transformers needs torch and transformers: "
                'pip install "torch==2.13.0" "transformers>=4.50"'
            ) from exc
        if self.threads:
            torch.set_num_threads(self.threads)
        where, extra = self.model, {}
        if self.source and self.source.suffix == ".gguf":
            missing = [m for m in ("gguf", "accelerate") if _missing(m)]
            if missing:
                raise BackendUnavailableError(
                    f"transformers needs {' and '.join(missing)} to read {self.source.name}: "
                    f"pip install {' '.join(missing)}"
                )
            where, extra = str(self.source.parent), {"gguf_file": self.source.name}
        started = time.monotonic()
        try:
            tokenizer = AutoTokenizer.from_pretrained(where, **extra)
            model = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32, **extra)
        except (OSError, ValueError, RuntimeError) as exc:
            raise GenerationError(f"transformers: cannot load {self.model}: {exc}") from exc
        model.eval()
        self._tokenizer, self._model = tokenizer, model
        logger.info("transformers: loaded %s in %.1fs", self.model_id, time.monotonic() - started)
        return tokenizer, model


def _run(generate: Any, **kwargs: Any) -> Any:
    """model.generate without autograd; torch errors become GenerationError."""
    import torch

    try:
        with torch.inference_mode():
            return generate(**kwargs)
    except (RuntimeError, ValueError) as exc:
        raise GenerationError(f"transformers: generation failed: {exc}") from exc


def _cancelled_when(event: threading.Event) -> Any:
    """A StoppingCriteria that ends generate() once `event` is set."""
    import torch
    from transformers import StoppingCriteria

    class Cancelled(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), event.is_set(), dtype=torch.bool)

    return Cancelled()


def _eos_ids(model: Any) -> set[int]:
    eos = model.generation_config.eos_token_id
    return set(eos) if isinstance(eos, list) else {eos} if eos is not None else set()


def _missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None
