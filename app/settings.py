"""Settings: one pydantic model per concern, read from env (CHULCHEO_*) and an optional TOML file.

Precedence: explicit arguments > environment > TOML (`CHULCHEO_CONFIG` or ./chulcheo.toml) > defaults.
Nested values use `__` in env names, e.g. CHULCHEO_CHUNK__MAX_TOKENS=200.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import BaseModel, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from .models import default_model_dir
from .audit import AuditSettings
from .sso import AuthSettings


def default_index_dir() -> Path:
    """~/.local/share/chulcheo/index on Linux."""
    return Path(platformdirs.user_data_dir("chulcheo")) / "index"


def default_state_dir() -> Path:
    """~/.local/share/chulcheo on Linux: API keys, feedback, uploaded files."""
    return Path(platformdirs.user_data_dir("chulcheo"))


class EmbeddingSettings(BaseModel):
    """Which embedding model: a registered name (see `chulcheo models list`), a local path or a HF id."""

    model: str = "embeddinggemma-300m"
    # onnx-int8: an int8-quantized ONNX copy of the model directory on onnxruntime, made once
    # next to the model (`chulcheo models pull` or first use): 2.1x faster than torch with the
    # same KorQuAD nDCG@10 (0.918 vs 0.917, docs/benchmarks.md). torch: sentence-transformers
    # as published. Their vectors differ slightly, so switching needs `ingest --rebuild`.
    backend: Literal["torch", "onnx-int8"] = "onnx-int8"
    batch_size: int = Field(16, ge=1)  # torch, and texts per request to url; onnx-int8 embeds one text at a time
    max_seq_length: int | None = Field(512, ge=16)
    # An OpenAI-compatible /v1/embeddings server (infinity-emb, vLLM, TEI) computes the vectors
    # instead of this process, e.g. "http://gpu-box:7997/v1"; `model` still names the local model
    # directory, whose tokenizer sizes chunks and whose prompts are prepended. "" : in-process.
    url: str = ""
    api_model: str = ""  # the model name the server knows; "": the name of `model`
    api_key: str | None = None  # sent as a Bearer token (env CHULCHEO_EMBEDDING__API_KEY)
    timeout_s: float = Field(60, gt=0)  # per request of `batch_size` texts


class ChunkSettings(BaseModel):
    """Chunk size and overlap, in embedding-model tokens."""

    max_tokens: int = Field(256, ge=16)
    overlap_tokens: int = Field(32, ge=0)
    # Index each chunk under its document title, running header and heading (the quoted text is unchanged):
    # +0.023 hit@1 for Kiwi BM25, +0.020 dense, +0.016 hybrid on KorQuAD (docs/benchmarks.md).
    context_prefix: bool = True

    @model_validator(mode="after")
    def _overlap_smaller(self) -> ChunkSettings:
        if self.overlap_tokens >= self.max_tokens:
            raise ValueError(
                f"chunk.overlap_tokens ({self.overlap_tokens}) must be smaller than "
                f"chunk.max_tokens ({self.max_tokens})"
            )
        return self


class RetrievalSettings(BaseModel):
    """Search defaults; BM25 parameters are fixed at index build time and recorded in the manifest."""

    mode: Literal["hybrid", "bm25", "dense"] = "hybrid"
    k: int = Field(10, ge=1)
    # Defaults chosen on all 5,774 KorQuAD dev questions (docs/benchmarks.md, "Retrieval
    # tuning"): weighted fusion beat RRF by 0.03 hit@1; z-score beat min-max at every depth and
    # 100 candidates per leg beat 50, in both halves of the questions; 0.5/0.5 sits in the middle
    # of the weight plateau (0.4-0.6), so neither leg's failures dominate on other corpora.
    # adaptive: zscore-pool with each leg weighted per query by how peaked it is; kept off by
    # default: safer when one leg is far weaker, 0.001 lower on KorQuAD (docs/benchmarks.md).
    fusion: Literal["rrf", "weighted", "adaptive"] = "weighted"
    rrf_k: int = Field(60, ge=1)
    bm25_weight: float = Field(0.5, ge=0)
    dense_weight: float = Field(0.5, ge=0)
    # zscore-pool: z-scores with a short BM25 leg (a small index, a rare term) standardized over
    # the same pool as the dense leg, its unmatched rows at score 0; "zscore" squeezed such a
    # leg's decisive match (docs/benchmarks.md, "Fusion on real documents"). Same as zscore
    # whenever BM25 matches every candidate; fusion is query-time only (no re-ingest).
    norm: Literal["minmax", "zscore", "zscore-pool"] = "zscore-pool"
    candidates: int = Field(100, ge=1)
    # FAISS index written at ingest: exact below dense_auto_min_rows chunks, HNSW from there on
    # (10k chunks: 1.7 ms vs 2.5 ms exact, dense recall@10 1.000; applies at the next ingest).
    dense_index: Literal["flat", "hnsw", "auto"] = "auto"
    dense_auto_min_rows: int = Field(10_000, ge=1)
    hnsw_m: int = Field(32, ge=1)
    hnsw_ef_construction: int = Field(200, ge=1)
    hnsw_ef_search: int = Field(128, ge=1)
    # Each ingest adds a segment (deletions only mark rows); past this many segments the newest
    # small ones are merged in the background (`chulcheo index compact` merges all of them).
    max_segments: int = Field(8, ge=1)
    # Threads per FAISS query. One: the server runs requests in parallel, and on 2 shared
    # cores a multi-threaded scan was 7x slower at 10k chunks (docs/benchmarks.md).
    faiss_threads: int = Field(1, ge=1)
    bm25_k1: float = Field(0.9, gt=0)  # k1 in 0.6-1.2 is a plateau; 1.2 was 0.008 hit@1 lower
    bm25_b: float = Field(0.75, ge=0, le=1)


class GenerationSettings(BaseModel):
    """Which local LLM writes the draft answers, and how it samples."""

    backend: Literal["llama_cpp", "transformers", "openai_compat"] = "llama_cpp"
    # llama_cpp: a registered name (`chulcheo models list`) or a .gguf path;
    # transformers: a checkpoint directory or a .gguf path; openai_compat: the server's model name.
    model: str = "qwen2.5-coder-1.5b-instruct"
    context_size: int = Field(4096, ge=512)
    threads: int | None = Field(None, ge=1)  # None: all cores
    temperature: float = Field(0.1, ge=0)  # low: answers must stick to the sources
    top_p: float = Field(0.9, gt=0, le=1)
    repeat_penalty: float = Field(1.1, ge=1)
    max_tokens: int = Field(256, ge=1)
    seed: int | None = 0
    # openai_compat only: e.g. http://gpu-box:8000/v1 (vLLM, llama.cpp server, TGI, Ollama).
    base_url: str = "http://127.0.0.1:8080/v1"
    api_key: str | None = None
    timeout_s: float = Field(120, gt=0)


class AnswerSettings(BaseModel):
    """How answers are drafted and checked (the grounding step)."""

    # Passages offered to the model: a small CPU model reads 3 faster and is less distracted;
    # hybrid recall@5 is 0.997 on KorQuAD, so the answer is nearly always among them.
    k: int = Field(3, ge=1)
    # Tokens of passages in the prompt (0 = whatever the context window holds). Every prompt
    # token delays the first answer token (the 1.5B model reads ~90 tokens/s on 2 cores);
    # passages over the cap are cut to the sentences sharing most words with the question
    # (`focus`), or else cut in rank order. 200: first token 2.4 s p50 on KorQuAD, where 320
    # took 3.7 s and whole passages 9.1 s (docs/benchmarks.md, "Performance on CPU").
    passage_tokens: int = Field(200, ge=0)
    focus: bool = True
    unsupported: Literal["remove", "mark"] = "remove"
    # Embedding similarity lets a paraphrase with coverage between weak and min pass.
    similarity: bool = True
    min_coverage: float = Field(0.75, ge=0, le=1)
    weak_coverage: float = Field(0.5, ge=0, le=1)
    min_similarity: float = Field(0.8, ge=-1, le=1)
    # Source sentences whose vectors unit selection keeps for the next question (it embeds them
    # while the user waits for the first token; 4096 × 768 floats ≈ 12.6 MB); 0 = none kept.
    embed_cache: int = Field(4096, ge=0)
    # Question coverage a quoted source sentence (or the span of a bare answer) needs: 0.5 abstained
    # on "재택근무는 일주일에 며칠까지 가능한가요?" against "재택근무는 주 2일까지 허용한다".
    extractive_min_coverage: float = Field(0.4, ge=0, le=1)
    # Compose the answer per part of the question (answer/): the focused prompt holds the source
    # sentences picked for each part, parts the draft leaves out get their sentences quoted whole,
    # a part nothing answers is named. False: the earlier flow (whole passages, quotes only as fallback).
    compose: bool = True
    max_sentences: int = Field(5, ge=1)  # sentences in an answer (drafted and quoted)
    max_chars: int = Field(400, ge=50)  # characters of answer text besides the citation cards
    # A draft whose last this-many characters already occurred in it is looping: generation stops (0: off).
    loop_span: int = Field(24, ge=0)
    condense: Literal["llm", "rules", "off"] = "llm"  # follow-ups: rewrite with the LLM, rules as fallback
    max_history_turns: int = Field(6, ge=0)


class LimitSettings(BaseModel):
    """Bounds on what a single input file may cost."""

    max_file_mb: float = Field(200, gt=0)
    max_uncompressed_mb: float = Field(200, gt=0)
    max_compression_ratio: float = Field(100, gt=1)


class OcrSettings(BaseModel):
    """OCR of scanned PDF pages and image files (Tesseract; on wherever it is installed)."""

    enabled: bool = True  # used when Tesseract and the languages below are installed
    lang: str = Field("kor+eng", pattern=r"^[a-z_]+(\+[a-z_]+)*$")
    page_timeout_s: float = Field(120, gt=0)
    upload_check_pages: int = Field(2, ge=1)  # an upload is OCR'd this far before it is accepted
    workers: int = Field(0, ge=0, le=64)  # pages read side by side (one Tesseract each); 0 = CPU cores


class ServerSettings(BaseModel):
    """`chulcheo serve`: where it listens and what one request may cost."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    # Uploads over this are refused with 413 before anything is stored.
    max_upload_mb: float = Field(50, gt=0)
    # File types an upload may have; each must be one the ingester reads.
    upload_types: list[str] = [".txt", ".md", ".html", ".htm", ".pdf", ".docx", ".hwpx", ".hwp", ".pptx", ".xlsx",
                              ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".jsonl"]
    # Answers generated at once: llama.cpp runs one at a time per model; more wait in line.
    max_concurrent_answers: int = Field(1, ge=1)
    # How long a question may wait for a free slot before it is refused with 503 (a queue
    # without a bound would tie up every server thread, and searches with them).
    answer_wait_s: float = Field(300, gt=0)
    # Questions per key (API and web UI): `ask_burst` at once, refilled at `ask_per_minute`
    # (0 = no limit). One CPU answers about 4-6 questions a minute, so 20 is already generous.
    ask_per_minute: float = Field(20, ge=0)
    ask_burst: int = Field(5, ge=1)
    # An answer still being generated after this long is stopped: 504 (SSE: an error event).
    ask_timeout_s: float = Field(180, gt=0)
    search_k_max: int = Field(50, ge=1)
    # /v1/verify: the answer plus every passage, in characters (over it: 413). The check costs
    # CPU per character; it shares the ask rate limit and stops when the client goes away.
    verify_max_chars: int = Field(200_000, ge=1000)
    max_concurrent_checks: int = Field(2, ge=1)
    # Any request body other than an upload (JSON routes, the UI's events): over it, 413 before
    # it is read. Uploads are bounded by max_upload_mb.
    max_body_mb: float = Field(2, gt=0)
    # 👍/👎 per key: each is stored, so a key could otherwise fill the disk.
    feedback_per_minute: float = Field(30, ge=0)
    feedback_burst: int = Field(10, ge=1)
    # Browser origins (e.g. ["https://intranet.example.com"]) that may call the API from their
    # pages. Empty: no CORS headers at all, so no other site can read answers with a user's cookie.
    cors_origins: list[str] = []
    # /metrics: "restricted" shows request counts to anyone but index and job figures only to an
    # admin key of every group (*); "public" shows everything to anyone; "off" removes the route.
    metrics: Literal["restricted", "public", "off"] = "restricted"
    # How long a web-UI login lasts; revoking the key ends it at once.
    session_hours: float = Field(12, gt=0)
    # Files picked in the UI's upload box but never submitted are deleted after this many seconds.
    ui_upload_max_age_s: int = Field(3600, ge=60)
    # The source viewer (page images, original files), per key: `view_burst` at once, refilled
    # at `view_per_minute` (0 = no limit). Pages rendered at once (more wait up to `view_wait_s`,
    # then 503); the default and the widest page image in pixels; rendered pages kept on disk
    # (<index_dir>/page-cache) up to `page_cache_mb`.
    view_per_minute: float = Field(120, ge=0)
    view_burst: int = Field(30, ge=1)
    max_concurrent_renders: int = Field(2, ge=1)
    view_wait_s: float = Field(20, gt=0)
    page_width: int = Field(1000, ge=100, le=4000)
    page_width_max: int = Field(2000, ge=100, le=4000)
    page_cache_mb: float = Field(256, ge=0)


class IngestSettings(BaseModel):
    """Where `chulcheo ingest` reads, OCRs, chunks and embeds files (the index is written here either way)."""

    # "" : in this process. "auto" or "HOST:PORT": on the Ray cluster there (`ingest --ray`);
    # every node needs chulcheo, the models at model_dir and the files at the same paths.
    ray: str = ""
    ray_cpus_per_worker: float = Field(1, gt=0)  # each actor (one embedding model) asks for this many
    ray_workers: int = Field(0, ge=0)  # actors; 0: the cluster's CPUs / ray_cpus_per_worker


class IndexSettings(BaseModel):
    """Where the index lives: files under index_dir (default), or a Postgres database with pgvector."""

    # postgresql://user:password@host/db: chunks, vectors and BM25 postings in Postgres, shared by
    # every replica (index_dir still holds the writer lock, OCR cache and files waiting for OCR)
    url: str | None = None
    # pgvector's HNSW index for the dense leg (else an exact scan); see retrieval/pg.py
    pg_hnsw: bool = True


class StateSettings(BaseModel):
    """`[state]`: where keys, sessions, feedback, jobs, rate limits and the audit log live."""

    # postgresql://user:password@host/db: shared by every `serve` replica (with index.url, replicas
    # behind a load balancer act as one). Unset: one SQLite file in state_dir (one process).
    url: str | None = None
    # Postgres connections one process keeps at most (server threads wait for a free one)
    pool_size: int = Field(8, ge=1, le=100)
    # Uploaded files, by default state_dir/uploads. Replicas on several machines need one folder
    # they all mount (NFS/SMB): the replica that runs an upload job and the page viewer read it.
    files_dir: Path | None = None
    # How often a replica looks for queued jobs in Postgres (seconds)
    job_poll_s: float = Field(1.0, gt=0, le=60)


class Settings(BaseSettings):
    """All settings of one chulcheo installation."""

    model_config = SettingsConfigDict(
        env_prefix="CHULCHEO_", env_nested_delimiter="__", extra="ignore"
    )

    index_dir: Path = Field(default_factory=default_index_dir)
    # API keys (hashed), feedback and uploaded files live here (SQLite + uploads/).
    state_dir: Path = Field(default_factory=default_state_dir)
    model_dir: Path = Field(default_factory=default_model_dir)
    embedding: EmbeddingSettings = EmbeddingSettings()
    chunk: ChunkSettings = ChunkSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    index: IndexSettings = IndexSettings()
    ingest: IngestSettings = IngestSettings()
    state: StateSettings = StateSettings()
    limits: LimitSettings = LimitSettings()
    ocr: OcrSettings = OcrSettings()
    generation: GenerationSettings = GenerationSettings()
    answer: AnswerSettings = AnswerSettings()
    server: ServerSettings = ServerSettings()
    auth: AuthSettings = AuthSettings()
    audit: AuditSettings = AuditSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        explicit = os.environ.get("CHULCHEO_CONFIG")
        toml_path = Path(explicit or "chulcheo.toml")
        if explicit and not toml_path.is_file():
            raise ValueError(f"CHULCHEO_CONFIG={explicit}: no such settings file")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)
