"""OnnxEmbedder over a tiny stand-in model: a word-level tokenizer and a mean-of-embeddings ONNX graph.

The tiny graph runs in real onnxruntime, so padding, truncation, prompts and ordering are
checked end to end; the real EmbeddingGemma export is tests/integration/test_embed_onnx_real.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from retrieval import embed_onnx
from retrieval.embed import Embedder, _cpu_count, _local_model_id, l2_normalize
from retrieval.embed_onnx import (
    MARKER_FILE,
    MODEL_FILE,
    MODEL_ID_SUFFIX,
    RECIPE,
    OnnxEmbedder,
    OnnxModelError,
    onnx_dir_for,
    prepare_onnx,
    read_export,
)

ROOT = Path(__file__).resolve().parents[3]
PROMPTS = {"query": "task: search result | query: ", "document": "title: none | text: ",
           "Clustering": "task: clustering | query: "}
TEXTS = ["연차", "연차휴가는 15일 이다 .", "안녕하세요", "재택근무는 주 2회 까지 가능 하다 .", "억원 만원"]
DIM = 8
PAD, EOS, BOS, UNK = 0, 1, 2, 3


def _tokenizer(words: list[str]):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {"<pad>": PAD, "<eos>": EOS, "<bos>": BOS, "<unk>": UNK}
    for word in words:
        vocab.setdefault(word, len(vocab))
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", BOS), ("<eos>", EOS)]
    )
    return tokenizer


def _words(texts: list[str]) -> list[str]:
    from tokenizers import pre_tokenizers

    split = pre_tokenizers.Whitespace()
    return [w for t in texts for w, _ in split.pre_tokenize_str(t)]


def _mean_pooling_graph(table: np.ndarray):
    """input_ids, attention_mask (batch × sequence) -> masked mean of table rows (batch × DIM)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["emb"]),
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["maskf", "axis2"], ["mask3"]),
        helper.make_node("Mul", ["emb", "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis1"], ["total"], keepdims=0),
        helper.make_node("ReduceSum", ["mask3", "axis1"], ["count"], keepdims=0),
        helper.make_node("Div", ["total", "count"], ["sentence_embedding"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", DIM])],
        [numpy_helper.from_array(table, "table"),
         numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
         numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2")],
    )
    return onnx.helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _write_model_dir(path: Path) -> None:
    """Config files of a sentence-transformers directory (Transformer + mean Pooling, DIM wide)."""
    path.mkdir(parents=True)
    files = {
        "config_sentence_transformers.json": {"prompts": PROMPTS},
        "sentence_bert_config.json": {"max_seq_length": 64},
        "tokenizer_config.json": {"pad_token": "<pad>"},
        "modules.json": [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                         {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}],
        "1_Pooling/config.json": {"word_embedding_dimension": DIM, "pooling_mode_mean_tokens": True},
    }
    for name, data in files.items():
        (path / name).parent.mkdir(exist_ok=True)
        (path / name).write_text(json.dumps(data), encoding="utf-8")
    _tokenizer(_words([*TEXTS, *PROMPTS.values(), "연차는 며칠 ?"])).save(str(path / "tokenizer.json"))


def _write_copy(model_dir: Path, out: Path) -> dict:
    """What `_export` would leave in `out`: model.onnx; returns the marker."""
    import onnx

    vocab = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    table = np.random.default_rng(7).normal(size=(len(vocab), DIM)).astype(np.float32)
    onnx.save(_mean_pooling_graph(table), str(out / MODEL_FILE))
    return {"source_model_id": _local_model_id(model_dir), "recipe": RECIPE,
            "size": (out / MODEL_FILE).stat().st_size, "table": table.tolist()}


@pytest.fixture
def tiny(tmp_path) -> Path:
    """A tiny model directory with a current ONNX copy beside it."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    model_dir = tmp_path / "tiny-model"
    _write_model_dir(model_dir)
    out = onnx_dir_for(model_dir)
    out.mkdir()
    marker = _write_copy(model_dir, out)
    (out / MARKER_FILE).write_text(json.dumps(marker), encoding="utf-8")
    return model_dir


def _expected(model_dir: Path, prompt: str, text: str, max_len: int = 64) -> np.ndarray:
    """The tiny model computed by hand: mean of table rows over <bos> prompt+text <eos>."""
    from tokenizers import Tokenizer

    marker = json.loads((onnx_dir_for(model_dir) / MARKER_FILE).read_text(encoding="utf-8"))
    table = np.asarray(marker["table"], dtype=np.float32)
    ids = Tokenizer.from_file(str(model_dir / "tokenizer.json")).encode(prompt + text, add_special_tokens=False).ids
    ids = [BOS, *ids[: max_len - 2], EOS]
    return l2_normalize(table[ids].mean(axis=0)[None])[0]


class RecordingSession:
    """Wraps the real session and records each batch's input shape."""

    def __init__(self, session) -> None:
        self.session = session
        self.shapes: list[tuple[int, int]] = []

    def run(self, outputs, feeds):
        self.shapes.append(feeds["input_ids"].shape)
        return self.session.run(outputs, feeds)


def test_documents_and_queries_get_their_prompts_and_keep_input_order(tiny):
    embedder = OnnxEmbedder(tiny, batch_size=2)
    docs = embedder.embed_documents(TEXTS)
    query = embedder.embed_query("연차는 며칠 ?")
    assert docs.shape == (5, DIM) and docs.dtype == np.float32
    assert query.shape == (DIM,) and query.dtype == np.float32
    for row, text in zip(docs, TEXTS, strict=True):  # padding in a batch changes nothing
        np.testing.assert_allclose(row, _expected(tiny, PROMPTS["document"], text), atol=1e-6)
    np.testing.assert_allclose(query, _expected(tiny, PROMPTS["query"], "연차는 며칠 ?"), atol=1e-6)


def test_other_prompt_names_and_no_prompt(tiny):
    clustering = OnnxEmbedder(tiny, document_prompt="Clustering").embed_documents(["안녕하세요"])[0]
    np.testing.assert_allclose(clustering, _expected(tiny, PROMPTS["Clustering"], "안녕하세요"), atol=1e-6)
    bare = OnnxEmbedder(tiny, query_prompt=None).embed_query("안녕하세요")
    np.testing.assert_allclose(bare, _expected(tiny, "", "안녕하세요"), atol=1e-6)


def test_batches_run_longest_first(tiny):
    embedder = OnnxEmbedder(tiny, batch_size=2, workers=1)
    embedder.warm_up()
    embedder._session = recorder = RecordingSession(embedder._session)
    embedder.embed_documents(TEXTS)
    assert [rows for rows, _ in recorder.shapes] == [2, 2, 1]
    widths = [width for _, width in recorder.shapes]
    assert widths == sorted(widths, reverse=True)


def test_truncates_to_max_seq_length_keeping_special_tokens(tiny):
    embedder = OnnxEmbedder(tiny, max_seq_length=10)
    ids, mask = embedder.encode_inputs(PROMPTS["document"], ["연차 " * 50, "억원"])
    assert ids.shape == (2, 10)
    assert ids[0, 0] == BOS and ids[0, -1] == EOS and mask[0].all()
    assert mask[1].sum() == 9 and ids[1, 8] == EOS and ids[1, 9] == PAD  # <bos> title : none | text : 억원 <eos>
    vector = embedder.embed_documents(["연차 " * 50])[0]
    np.testing.assert_allclose(vector, _expected(tiny, PROMPTS["document"], "연차 " * 50, max_len=10), atol=1e-6)


def test_workers_share_the_texts_and_rows_come_back_in_input_order(tiny):
    texts = [f"연차휴가 {'규정 ' * n}이다" for n in (3, 9, 1, 7, 5, 2)]
    one = OnnxEmbedder(tiny, workers=1, batch_size=2).embed_documents(texts)
    embedder = OnnxEmbedder(tiny, workers=3, batch_size=2)
    embedder.warm_up()
    embedder._session = recorder = RecordingSession(embedder._session)
    many = embedder.embed_documents(texts)
    np.testing.assert_allclose(many, one, atol=1e-6)
    assert [rows for rows, _ in recorder.shapes] == [2, 2, 2]  # 3 workers, 2 texts each, one batch each


def test_count_tokens_has_no_prompt_or_special_tokens(tiny):
    embedder = OnnxEmbedder(tiny)
    assert embedder.count_tokens("연차휴가는 15일 이다 .") == 4
    assert embedder.count_tokens_many(["안녕하세요", ""]) == [1, 0]
    assert embedder._session is None  # counting loads only the tokenizer


def test_identity_and_dim_without_loading(tiny):
    embedder = OnnxEmbedder(tiny)
    assert isinstance(embedder, Embedder)
    assert embedder.dim == DIM and embedder._session is None
    assert embedder.model_id == _local_model_id(tiny) + MODEL_ID_SUFFIX and MODEL_ID_SUFFIX.startswith("+onnx-int8")
    assert embedder.max_seq_length == 64  # from sentence_bert_config.json
    assert embedder.workers == _cpu_count()
    assert embedder.num_threads == 1  # parallel over texts, not inside one
    assert embedder.embed_documents([]).shape == (0, DIM)


def test_loading_an_existing_copy_imports_no_torch(tiny):
    code = (
        "import sys; from retrieval.embed_onnx import OnnxEmbedder; "
        f"OnnxEmbedder({str(tiny)!r}).embed_documents(['연차휴가는 15일 이다 .']); "
        "print(sorted({'torch', 'transformers', 'sentence_transformers'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_missing_onnxruntime_is_named(tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match="pip install onnxruntime"):
        OnnxEmbedder(tiny).warm_up()


def test_missing_export_tools_are_named(tmp_path, monkeypatch):
    _write_model_dir(tmp_path / "tiny-model")
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(ImportError, match="onnxscript is missing"):
        prepare_onnx(tmp_path / "tiny-model")
    assert not onnx_dir_for(tmp_path / "tiny-model").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tiny")] == []


def test_directory_without_marker_is_reported(tiny):
    (onnx_dir_for(tiny) / MARKER_FILE).unlink()
    with pytest.raises(OnnxModelError, match="not a complete ONNX export.*delete it"):
        OnnxEmbedder(tiny).warm_up()


def test_truncated_model_file_is_reported(tiny):
    model = onnx_dir_for(tiny) / MODEL_FILE
    model.write_bytes(model.read_bytes()[:100])
    with pytest.raises(OnnxModelError, match="expected .* bytes, found 100"):
        OnnxEmbedder(tiny).embed_query("안녕하세요")


def test_unreadable_model_file_is_reported(tiny):
    out = onnx_dir_for(tiny)
    (out / MODEL_FILE).write_bytes(b"\x00not onnx" * 10)
    marker = json.loads((out / MARKER_FILE).read_text(encoding="utf-8")) | {"size": 90}
    (out / MARKER_FILE).write_text(json.dumps(marker), encoding="utf-8")
    with pytest.raises(OnnxModelError, match="onnxruntime cannot load"):
        OnnxEmbedder(tiny).warm_up()


@pytest.fixture
def fake_export(monkeypatch):
    """Replaces the torch export with `_write_copy`; records the directories it wrote to."""
    calls: list[Path] = []

    def export(model_path: Path, out: Path) -> dict:
        calls.append(out)
        return _write_copy(model_path, out)

    monkeypatch.setattr(embed_onnx, "_export", export)
    return calls


def test_first_use_exports_once_into_place(tmp_path, fake_export):
    pytest.importorskip("onnx")
    model_dir = tmp_path / "tiny-model"
    _write_model_dir(model_dir)
    OnnxEmbedder(model_dir).embed_query("안녕하세요")
    OnnxEmbedder(model_dir).embed_query("안녕하세요")
    assert len(fake_export) == 1 and fake_export[0].name.startswith(".tiny-model.onnx-int8.tmp-")
    assert read_export(model_dir)["source_model_id"] == _local_model_id(model_dir)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".locks", "tiny-model", "tiny-model.onnx-int8"]


def test_stale_copy_is_replaced(tiny, fake_export):
    out = onnx_dir_for(tiny)
    marker = json.loads((out / MARKER_FILE).read_text(encoding="utf-8")) | {"source_model_id": "other@00000000"}
    (out / MARKER_FILE).write_text(json.dumps(marker), encoding="utf-8")
    assert read_export(tiny) is None
    OnnxEmbedder(tiny).warm_up()
    assert len(fake_export) == 1
    assert read_export(tiny)["source_model_id"] == _local_model_id(tiny)
    assert not list(tiny.parent.glob(".tiny-model.onnx-int8.*"))


def test_failed_export_leaves_the_old_copy_and_no_temp_dir(tiny, monkeypatch):
    def broken(model_path: Path, out: Path) -> dict:
        (out / MODEL_FILE).write_bytes(b"half")
        raise OnnxModelError("the ONNX copy disagrees with torch")

    monkeypatch.setattr(embed_onnx, "_export", broken)
    before = (onnx_dir_for(tiny) / MODEL_FILE).read_bytes()
    with pytest.raises(OnnxModelError, match="disagrees"):
        prepare_onnx(tiny, force=True)
    assert (onnx_dir_for(tiny) / MODEL_FILE).read_bytes() == before
    assert not list(tiny.parent.glob(".tiny-model.onnx-int8.*"))


def test_needs_a_local_directory(tmp_path):
    with pytest.raises(ValueError, match="local sentence-transformers directory"):
        OnnxEmbedder(tmp_path / "없는-모델")
