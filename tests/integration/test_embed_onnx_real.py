"""The real int8 ONNX export of the default embedding model, made fresh into a temp directory.

The export runs once per session in a subprocess (about 2 minutes, 8 GB peak RSS), so this
process keeps only the models it compares: the torch embedder and the ONNX copy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PASSAGES = [
    "연차휴가는 1년간 80퍼센트 이상 출근한 근로자에게 15일을 유급으로 준다. 3년 이상 근속하면 2년마다 1일이 더해진다.",
    "재택근무는 팀장의 승인을 받아 주 2회까지 할 수 있으며, 근무 시간은 오전 9시부터 오후 6시까지다.",
    "2026년 임원 보수 한도는 총 48억 원이며, 주주총회의 승인을 받아야 한다.",
    "회사의 2024년 매출은 1,234억원으로 전년보다 12% 늘었고 영업이익은 300억원이었다.",
    "안녕하세요",
]
QUERIES = ["연차휴가는 며칠인가요?", "재택근무는 일주일에 몇 번 가능한가요?", "임원 보수 한도는 얼마인가요?",
           "작년 매출액은 얼마였나요?"]


@pytest.fixture(scope="module")
def model_path(real_settings) -> Path:
    from app.models import resolve_model

    return Path(resolve_model(real_settings.embedding.model, real_settings.model_dir))


@pytest.fixture(scope="module")
def onnx_dir(model_path, tmp_path_factory) -> Path:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    out = tmp_path_factory.mktemp("onnx") / "copy"
    code = f"from retrieval.embed_onnx import prepare_onnx; prepare_onnx({str(model_path)!r}, {str(out)!r})"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=1800,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def embedders(model_path, onnx_dir, real_settings):
    from retrieval.embed import SentenceTransformerEmbedder
    from retrieval.embed_onnx import OnnxEmbedder

    max_len = real_settings.embedding.max_seq_length
    return (SentenceTransformerEmbedder(str(model_path), max_seq_length=max_len),
            OnnxEmbedder(model_path, onnx_dir=onnx_dir, max_seq_length=max_len))


@pytest.fixture(scope="module")
def korean_texts(korquad_path) -> list[str]:
    from ingest.korquad import load_korquad

    corpus, _ = load_korquad(korquad_path)
    by_length = sorted((c["text"] for c in corpus[:200]), key=len)
    return PASSAGES + by_length[::33]  # 230 to 1,400 tokens (the longest is truncated to 512)


def test_export_marker(onnx_dir, embedders):
    from retrieval.embed_onnx import MODEL_ID_SUFFIX, RECIPE

    torch_embedder, onnx_embedder = embedders
    marker = json.loads((onnx_dir / "export.json").read_text(encoding="utf-8"))
    assert marker["source_model_id"] == torch_embedder.model_id
    assert onnx_embedder.model_id == torch_embedder.model_id + MODEL_ID_SUFFIX  # "+onnx-int8[-rr]" (7-bit without VNNI)
    assert marker["recipe"] == RECIPE and marker["dim"] == onnx_embedder.dim == 768
    assert min(marker["self_check_cosines"]) > 0.98
    assert (onnx_dir / "model.onnx").stat().st_size == marker["size"] < 500_000_000  # int8: ~377 MB
    assert sorted(p.name for p in onnx_dir.iterdir()) == ["export.json", "model.onnx"]


def test_same_token_ids_as_transformers(model_path, embedders, korean_texts):
    from transformers import AutoTokenizer

    _, onnx_embedder = embedders
    reference = AutoTokenizer.from_pretrained(str(model_path), local_files_only=True)
    prompt = "title: none | text: "
    ids, mask = onnx_embedder.encode_inputs(prompt, korean_texts)
    expected = reference([prompt + t for t in korean_texts], truncation=True,
                         max_length=onnx_embedder.max_seq_length)["input_ids"]
    assert [row[m.astype(bool)].tolist() for row, m in zip(ids, mask, strict=True)] == expected
    assert onnx_embedder.count_tokens_many(korean_texts) == [
        len(r) for r in reference(korean_texts, add_special_tokens=False)["input_ids"]
    ]


def test_vectors_close_to_torch(embedders, korean_texts):
    torch_embedder, onnx_embedder = embedders
    docs = np.sum(torch_embedder.embed_documents(korean_texts) * onnx_embedder.embed_documents(korean_texts), axis=1)
    queries = [float(torch_embedder.embed_query(q) @ onnx_embedder.embed_query(q)) for q in QUERIES]
    # measured on 100 KorQuAD chunks: min 0.987, mean 0.995
    assert docs.min() > 0.98 and docs.mean() > 0.99, docs
    assert min(queries) > 0.98, queries


def test_query_ranks_its_passage_first(embedders):
    _, onnx_embedder = embedders
    docs = onnx_embedder.embed_documents(PASSAGES)
    for i, query in enumerate(QUERIES):
        scores = docs @ onnx_embedder.embed_query(query)
        assert int(np.argmax(scores)) == i, (query, scores.round(3).tolist())
