"""Pick a Generator backend by name; each backend's heavy import happens inside its branch."""

from __future__ import annotations

from pathlib import Path

from .types import GenerationParams, Generator


def make_generator(
    backend: str,
    model: str,
    *,
    context_size: int = 4096,
    threads: int | None = None,
    base_url: str = "http://127.0.0.1:8080/v1",
    api_key: str | None = None,
    timeout_s: float = 120.0,
) -> Generator:
    """make_generator("llama_cpp", "/models/qwen.gguf") -> LlamaCppGenerator.

    `model` is already resolved: a file or directory path for the local backends, the
    server's model name for openai_compat.
    """
    match backend:
        case "llama_cpp":
            from .llama_cpp import LlamaCppGenerator

            return LlamaCppGenerator(Path(model), context_size=context_size, threads=threads)
        case "transformers":
            from .transformers import TransformersGenerator

            return TransformersGenerator(model, context_size=context_size, threads=threads)
        case "openai_compat":
            from .openai_compat import OpenAICompatGenerator

            return OpenAICompatGenerator(
                base_url, model, api_key=api_key, timeout_s=timeout_s, context_size=context_size
            )
        case _:
            raise ValueError(
                f"generation.backend={backend!r}: expected llama_cpp, transformers or openai_compat"
            )


__all__ = ["make_generator", "GenerationParams"]
