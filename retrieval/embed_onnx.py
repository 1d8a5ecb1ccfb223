"""`OnnxEmbedder`: an int8-quantized ONNX copy of a sentence-transformers model on onnxruntime.

The copy is made once (on first use, or by `prepare_onnx`) next to the model directory,
outside git, and reused by every later process:

    ~/.cache/chulcheo/models/embeddinggemma-300m.onnx-int8/
      model.onnx     the whole forward: Transformer → mean Pooling → Dense → Dense → Normalize,
                     inputs input_ids / attention_mask (batch × sequence), output (batch, 768)
      export.json    source model id, RECIPE, file size, library versions, self-check cosines

Export is `torch.onnx.export(dynamo=True)` with eager attention; the TorchScript exporter
(dynamo=False) fails inside transformers' vmap-built Gemma3 attention masks
("RuntimeError: unordered_map::at"). Quantization is onnxruntime's `quantize_dynamic`: int8
per-channel weights for MatMul, Gemm and the token-embedding Gather, except the MLP down
projections, which stay fp32 (their input has large outliers: quantizing them too lowered
the mean cosine to the torch vectors from 0.994 to 0.968 on KorQuAD chunks).

Loading an existing copy imports neither torch nor transformers: the tokenizer is read with
`tokenizers` (the library under transformers' fast tokenizer; same ids), the graph with
onnxruntime. Exporting needs torch, sentence-transformers, onnx, onnxscript and onnxruntime.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .embed import _cpu_count, _dim_from_config, _local_model_id, encode_sorted
from .errors import RetrievalError

logger = logging.getLogger(__name__)

# onnxruntime's telemetry writes a device id under ~/.cache/Microsoft and can report usage:
# nothing about the machine or its documents leaves it (read when onnxruntime is imported).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

SUFFIX = ".onnx-int8"
MODEL_FILE = "model.onnx"
MARKER_FILE = "export.json"
# How the copy is made. A copy whose marker names another recipe (or other source weights)
# is stale and exported again; change MODEL_ID_SUFFIX too when the vectors change, so that
# indexes built with the old copy are re-embedded.
RECIPE: dict[str, Any] = {
    "version": 1,
    "exporter": "torch.onnx.export(dynamo=True)",
    "attn_implementation": "eager",
    "opset": 18,
    "quantization": "onnxruntime.quantization.quantize_dynamic",
    "weight_type": "QInt8",
    "per_channel": True,
    "op_types": ["MatMul", "Gemm", "Gather"],
    "kept_fp32": "mlp.down_proj",
}


def _has_vnni() -> bool:
    """Whether the CPU has int8 dot-product instructions (AVX512-VNNI or AVX-VNNI)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return True  # not Linux: keep the measured default recipe
    return "avx512_vnni" in flags or "avx_vnni" in flags


# Without VNNI, onnxruntime's int8 MatMul adds u8×s8 pairs in saturating 16-bit lanes, so full
# 8-bit weights overflow: on an AVX2-only CPU the copy's self-check cosines to torch fell to
# 0.938-0.984 (below SELF_CHECK_MIN_COSINE). 7-bit weights (reduce_range) cannot overflow and
# gave 0.987-0.997 there. CPUs with VNNI keep the 8-bit recipe (and the copies and indexes it made).
if not _has_vnni():
    RECIPE["reduce_range"] = True
MODEL_ID_SUFFIX = "+onnx-int8" + ("-rr" if RECIPE.get("reduce_range") else "")
# The export compares itself with the torch model on these; measured 0.99+, a broken graph is far lower.
SELF_CHECK_TEXTS = (
    "안녕하세요",
    "연차휴가는 1년간 80퍼센트 이상 출근한 근로자에게 15일을 준다.",
    "2024년 매출은 1,234억원으로 전년보다 12% 늘었고, 영업이익은 300억원이었다. 재택근무는 주 2회까지 가능하다.",
)
SELF_CHECK_MIN_COSINE = 0.97


class OnnxModelError(RetrievalError):
    """The ONNX copy is incomplete, unreadable, or failed its self-check after export."""


def onnx_dir_for(model_path: str | os.PathLike[str]) -> Path:
    """Where the copy of a model directory lives: ".../embeddinggemma-300m" -> ".../embeddinggemma-300m.onnx-int8"."""
    path = Path(model_path).expanduser()
    return path.with_name(path.name + SUFFIX)


def read_export(model_path: str | os.PathLike[str], onnx_dir: str | os.PathLike[str] | None = None) -> dict | None:
    """The marker of a usable copy, or None when there is no copy or it is stale.

    Stale: made from other weights (another `_local_model_id`) or by another RECIPE.

    Raises:
        OnnxModelError: the directory exists but its marker is unreadable or model.onnx
            is missing or has the wrong size (an interrupted copy or a damaged disk).
    """
    model_path = Path(model_path).expanduser()
    out = Path(onnx_dir).expanduser() if onnx_dir is not None else onnx_dir_for(model_path)
    if not out.exists():
        return None
    try:
        marker = json.loads((out / MARKER_FILE).read_text(encoding="utf-8"))
        size, source, recipe = int(marker["size"]), marker["source_model_id"], marker["recipe"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise OnnxModelError(
            f"{out} is not a complete ONNX export ({MARKER_FILE}: {exc}); delete it to export again"
        ) from exc
    if source != _local_model_id(model_path) or recipe != RECIPE:
        return None
    model = out / MODEL_FILE
    found = model.stat().st_size if model.is_file() else None
    if found != size:
        raise OnnxModelError(f"{model}: expected {size} bytes, found {found}; delete {out} to export again")
    return marker


def prepare_onnx(
    model_path: str | os.PathLike[str], onnx_dir: str | os.PathLike[str] | None = None, *, force: bool = False
) -> Path:
    """Export and quantize the model once; return the path of model.onnx.

    Takes about 2 minutes and 8 GB of RAM (peak) for EmbeddingGemma-300M. The copy is built in a
    temp directory beside the target and renamed into place, under a file lock, so two
    processes never export at once and no reader ever sees half a copy. `force` replaces a
    current or damaged copy.
    """
    from filelock import FileLock

    model_path = Path(model_path).expanduser()
    out = Path(onnx_dir).expanduser() if onnx_dir is not None else onnx_dir_for(model_path)
    if not force and read_export(model_path, out) is not None:
        return out / MODEL_FILE
    locks = out.parent / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with FileLock(str(locks / f"{out.name}.lock")):
        if not force and read_export(model_path, out) is not None:  # another process made it meanwhile
            return out / MODEL_FILE
        for leftover in out.parent.glob(f".{out.name}.*-*"):  # from a process that died mid-export
            shutil.rmtree(leftover, ignore_errors=True)
        tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
        tmp.mkdir()
        try:
            marker = _export(model_path, tmp)
            (tmp / MARKER_FILE).write_text(json.dumps(marker, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
            _move_into_place(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out / MODEL_FILE


def _move_into_place(tmp: Path, out: Path) -> None:
    if out.exists():
        old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, out)


def _export(model_path: Path, out: Path) -> dict[str, Any]:
    """Write out/model.onnx (int8) from the sentence-transformers directory; return its marker."""
    try:
        import onnx
        import onnxruntime
        import onnxscript  # noqa: F401  (the dynamo exporter writes through it)
        import sentence_transformers
        import torch
        import transformers
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ImportError(
            f"exporting {model_path.name} to ONNX needs torch, sentence-transformers, onnx, onnxscript and "
            f"onnxruntime ({exc.name} is missing): pip install onnxruntime onnx onnxscript"
        ) from exc
    _go_offline()
    started = time.monotonic()
    torch.set_num_threads(_cpu_count())
    model = sentence_transformers.SentenceTransformer(
        str(model_path), device="cpu", local_files_only=True,
        # eager: the attention the export was checked with (fp32 graph = torch, cosine 1.0 up to 1,269 tokens)
        model_kwargs={"attn_implementation": "eager"},
    ).eval()

    class SentenceEmbedding(torch.nn.Module):
        def __init__(self, st: torch.nn.Module) -> None:
            super().__init__()
            self.st = st

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.st({"input_ids": input_ids, "attention_mask": attention_mask})["sentence_embedding"]

    prompt = (model.prompts or {}).get("document", "")
    batch = model.tokenizer([prompt + t for t in SELF_CHECK_TEXTS], padding=True, return_tensors="pt")
    inputs = (batch["input_ids"], batch["attention_mask"])
    whole = SentenceEmbedding(model).eval()
    fp32 = out / "fp32" / MODEL_FILE
    fp32.parent.mkdir()
    dims = {0: torch.export.Dim("batch"), 1: torch.export.Dim("sequence")}
    with torch.no_grad():
        expected = whole(*inputs).numpy()
        torch.onnx.export(
            whole, inputs, str(fp32), dynamo=True, opset_version=RECIPE["opset"], external_data=True,
            input_names=["input_ids", "attention_mask"], output_names=["sentence_embedding"],
            dynamic_shapes={"input_ids": dims, "attention_mask": dims}, verbose=False,
        )
    del whole, model
    logger.info("exported %s to ONNX in %.0fs; quantizing", model_path.name, time.monotonic() - started)
    quantize_dynamic(
        fp32, out / MODEL_FILE, weight_type=QuantType.QInt8, per_channel=RECIPE["per_channel"],
        reduce_range=RECIPE.get("reduce_range", False),
        op_types_to_quantize=RECIPE["op_types"], nodes_to_exclude=_down_projections(onnx, fp32, model_path),
    )
    shutil.rmtree(fp32.parent)
    session = _session(out / MODEL_FILE, _cpu_count())
    got = session.run(None, {"input_ids": inputs[0].numpy(), "attention_mask": inputs[1].numpy()})[0]
    cosines = [round(float(c), 5) for c in np.sum(_unit(got) * _unit(expected), axis=1)]
    if min(cosines) < SELF_CHECK_MIN_COSINE:
        raise OnnxModelError(f"the ONNX copy of {model_path.name} disagrees with torch: cosines {cosines}")
    logger.info("ONNX int8 copy of %s ready in %.0fs (cosine to torch %s)",
                model_path.name, time.monotonic() - started, cosines)
    return {
        "source_model_id": _local_model_id(model_path),
        "source_path": str(model_path),
        "recipe": RECIPE,
        "size": (out / MODEL_FILE).stat().st_size,
        "dim": int(got.shape[1]),
        "self_check_cosines": cosines,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "sentence_transformers": sentence_transformers.__version__,
                     "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
        "seconds": round(time.monotonic() - started, 1),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _down_projections(onnx: Any, path: Path, model_path: Path) -> list[str]:
    """Names of the MLP down-projection MatMuls: weight shape (intermediate_size, hidden_size)."""
    config = json.loads((model_path / "config.json").read_text(encoding="utf-8"))
    shape = [config["intermediate_size"], config["hidden_size"]]
    graph = onnx.load(str(path), load_external_data=False).graph
    dims = {t.name: list(t.dims) for t in graph.initializer}
    names = [n.name for n in graph.node if n.op_type == "MatMul" and dims.get(n.input[1]) == shape]
    if len(names) != config["num_hidden_layers"]:
        raise OnnxModelError(
            f"expected {config['num_hidden_layers']} MLP down projections in the exported graph, found {len(names)}"
        )
    return names


def _session(path: Path, threads: int) -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError("OnnxEmbedder needs onnxruntime: pip install onnxruntime") from exc
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own pybind exception types
        raise OnnxModelError(f"onnxruntime cannot load {path} ({exc}); delete {path.parent} to export again") from exc


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def _go_offline() -> None:
    """The export loads a local model and must never reach for the hub (this network cannot)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class OnnxEmbedder:
    """An `Embedder` over the int8 ONNX copy of a local sentence-transformers directory.

    Same contract as `SentenceTransformerEmbedder`: the model's "query"/"document" prompts
    (read from config_sentence_transformers.json) are prepended, texts are truncated to
    max_seq_length tokens (special tokens included), rows come back L2-normalized float32 in
    input order, and `count_tokens` counts text tokens only. The vectors differ slightly from
    the torch ones, so `model_id` does too ("<torch model id>+onnx-int8"). Construction is
    cheap; `warm_up()` exports the copy if it is missing (minutes, needs torch) and loads it.

    batch_size defaults to 1: dynamic quantization scales activations over the whole batch
    tensor (padding included), so a text's vector would depend on its batch neighbours
    (cosine 0.992 between a chunk embedded alone and in a batch of 16). One text at a time
    gives each text one vector, is closer to torch, and was as fast (9.0 vs 8.1 chunks/s).

    >>> e = OnnxEmbedder("~/.cache/chulcheo/models/embeddinggemma-300m", max_seq_length=512)
    >>> e.embed_documents(["연차휴가는 15일이다."]).shape
    (1, 768)
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        model_id: str | None = None,
        onnx_dir: str | os.PathLike[str] | None = None,
        batch_size: int = 1,
        max_seq_length: int | None = None,
        num_threads: int | None = None,
        workers: int | None = None,
        query_prompt: str | None = "query",
        document_prompt: str | None = "document",
    ) -> None:
        self.path = Path(model_path).expanduser()
        if not self.path.is_dir():
            raise ValueError(f"OnnxEmbedder needs a local sentence-transformers directory, got {model_path}")
        self.model_path = str(model_path)
        self.onnx_dir = Path(onnx_dir).expanduser() if onnx_dir is not None else onnx_dir_for(self.path)
        self.model_id = model_id or _local_model_id(self.path) + MODEL_ID_SUFFIX
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length or _config_max_seq_length(self.path)
        # Several texts: `workers` threads (default: one per core) each run one text at a time on
        # the shared session with `num_threads` (default 1) threads inside. On 2 cores that gave
        # 12.6 chunks/s against 9.6 for one run at a time with 2 threads inside (the session is
        # thread-safe and its weights are shared). A single query: 33 vs 25 ms.
        self.workers = workers or _cpu_count()
        self.num_threads = num_threads or (1 if self.workers > 1 else _cpu_count())
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt
        self._session: Any = None
        self._tokenizer: Any = None
        self._specials = 0
        self._pad_id = 0
        self._prompts: dict[str, str] = {}

    def prepare(self) -> Path:
        """Make the ONNX copy now if it is missing or stale (see `prepare_onnx`)."""
        return prepare_onnx(self.path, self.onnx_dir)

    def warm_up(self) -> None:
        """Load the copy (once), exporting it first if needed."""
        if self._session is not None:
            return
        started = time.monotonic()
        session = _session(self.prepare(), self.num_threads)
        defined = _config_prompts(self.path)
        self._prompts = {
            "query": defined.get(self.query_prompt, "") if self.query_prompt else "",
            "document": defined.get(self.document_prompt, "") if self.document_prompt else "",
        }
        self._get_tokenizer()
        self._session = session
        logger.info("loaded %s (%s) in %.1fs, %d threads, prompts %s", self.model_id, self.onnx_dir,
                    time.monotonic() - started, self.num_threads, self._prompts)

    @property
    def dim(self) -> int:
        # From the config files when possible: isinstance(x, Embedder) touches `dim`.
        if self._session is None:
            dim = _dim_from_config(self.path)
            if dim is not None:
                return dim
        self.warm_up()
        return int(self._session.get_outputs()[0].shape[-1])

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.warm_up()
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        prompt = self._prompts["document"]
        lengths = self.count_tokens_many(texts)
        run = lambda batch: self._run(prompt, batch)  # noqa: E731
        if self.workers < 2 or len(texts) < 2:
            return encode_sorted(run, texts, self.batch_size, lengths=lengths)
        order = sorted(range(len(texts)), key=lambda i: -lengths[i])
        shares = [order[w :: self.workers] for w in range(self.workers)]  # similar lengths per worker
        with ThreadPoolExecutor(self.workers, thread_name_prefix="chulcheo-embed") as pool:
            parts = list(pool.map(
                lambda idx: encode_sorted(run, [texts[i] for i in idx], self.batch_size,
                                          lengths=[lengths[i] for i in idx]),
                [share for share in shares if share],
            ))
        rows = np.empty((len(texts), parts[0].shape[1]), dtype=np.float32)
        for share, part in zip([share for share in shares if share], parts, strict=True):
            rows[share] = part
        return rows

    def embed_query(self, text: str) -> np.ndarray:
        self.warm_up()
        prompt = self._prompts["query"]
        return encode_sorted(lambda batch: self._run(prompt, batch), [text], 1)[0]

    def count_tokens(self, text: str) -> int:
        return self.count_tokens_many([text])[0]

    def count_tokens_many(self, texts: Sequence[str]) -> list[int]:
        """Token counts without prompt or special tokens; loads only the tokenizer."""
        return token_counts(self._get_tokenizer, texts)

    def encode_inputs(self, prompt: str, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """input_ids and attention_mask (int64, right-padded) for prompt + each text, truncated."""
        tokenizer = self._get_tokenizer()
        rows = []
        for encoding in tokenizer.encode_batch([prompt + t for t in texts], add_special_tokens=False):
            encoding.truncate(self.max_seq_length - self._specials)  # room for <bos> … <eos>
            rows.append(tokenizer.post_process(encoding).ids)
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = row
            mask[i, :len(row)] = 1
        return ids, mask

    def _run(self, prompt: str, texts: list[str]) -> np.ndarray:
        ids, mask = self.encode_inputs(prompt, texts)
        return self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]

    def _get_tokenizer(self) -> Any:
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            file = self.path / "tokenizer.json"
            if not file.is_file():
                raise OnnxModelError(f"OnnxEmbedder needs a fast tokenizer file: {file} is missing")
            tokenizer = Tokenizer.from_file(str(file))
            processor = tokenizer.post_processor
            self._specials = processor.num_special_tokens_to_add(False) if processor is not None else 0
            self._pad_id = _pad_id(self.path, tokenizer)
            self._tokenizer = tokenizer
        return self._tokenizer


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _config_max_seq_length(path: Path) -> int:
    """sentence_bert_config.json's max_seq_length (what sentence-transformers uses), else 512."""
    return int(_read_json(path / "sentence_bert_config.json").get("max_seq_length") or 512)


def token_counts(get_tokenizer: Any, texts: Sequence[str]) -> list[int]:
    """Tokens of each text without prompt or special tokens (`get_tokenizer()` called only if needed)."""
    if not texts:
        return []
    return [len(e.ids) for e in get_tokenizer().encode_batch(list(texts), add_special_tokens=False)]


def _config_prompts(path: Path) -> dict[str, str]:
    return dict(_read_json(path / "config_sentence_transformers.json").get("prompts") or {})


def _pad_id(path: Path, tokenizer: Any) -> int:
    """The pad token's id (its value never reaches the vector: padding is masked out)."""
    pad = _read_json(path / "tokenizer_config.json").get("pad_token")
    token_id = tokenizer.token_to_id(pad) if isinstance(pad, str) else None
    return int(token_id) if token_id is not None else 0
