"""Ingestion against the plain LangChain pipeline, same files, same model, same run.

Writes P KorQuAD 1.0 dev paragraphs as P documents (every third one as a one-page PDF, the
rest as UTF-8 text) and ingests them, several runs, interleaved:

- baseline: TextLoader / PyPDFLoader -> RecursiveCharacterTextSplitter(1000, 200) ->
  HuggingFaceEmbeddings (the same EmbeddingGemma directory, sentence-transformers, torch) ->
  FAISS.from_documents + BM25Retriever.from_documents. LangChain has no incremental mode:
  an unchanged or edited corpus costs a full run again.
- chulcheo with each `--backends` embedding backend, into a fresh index: full ingest; then a
  re-ingest of the unchanged corpus; then a re-ingest after editing 1 % of the documents.

Models are loaded before the clock starts, on both sides. Prints medians and the ratios
baseline-full / chulcheo for the full, unchanged and 1 %-edited cases.

    .venv/bin/python bench/ingest_vs_langchain.py --paragraphs 300 --runs 3 --out ingest.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is a local directory; never the hub
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import KORQUAD, emit  # noqa: E402

from app.models import resolve_model  # noqa: E402
from app.pipeline import Pipeline  # noqa: E402
from app.settings import Settings  # noqa: E402
from ingest.korquad import load_korquad  # noqa: E402
from tests.pdfs import build_pdf, find_korean_ttf  # noqa: E402



def write_corpus(rows: list[dict], folder: Path) -> list[Path]:
    folder.mkdir(parents=True)
    font = find_korean_ttf()
    paths = []
    for i, row in enumerate(rows):
        title = row.get("metadata", {}).get("title") or row["id"]
        if i % 3 == 2 and font is not None:
            path = folder / f"{i:04d}.pdf"
            path.write_bytes(build_pdf([f"{title}\n{row['text']}"], font))
        else:
            path = folder / f"{i:04d}.txt"
            path.write_text(f"{title}\n\n{row['text']}\n", encoding="utf-8")
        paths.append(path)
    return paths


class LangChainBaseline:
    """loader -> RecursiveCharacterTextSplitter -> HuggingFaceEmbeddings -> FAISS + BM25Retriever."""

    def __init__(self, model_dir: str) -> None:
        from langchain_community.embeddings import HuggingFaceEmbeddings

        self.embeddings = HuggingFaceEmbeddings(
            model_name=model_dir, model_kwargs={"device": "cpu", "local_files_only": True},
            encode_kwargs={"normalize_embeddings": True},
        )
        self.embeddings.embed_documents(["모델을 미리 불러온다."])

    def ingest(self, paths: list[Path]) -> dict:
        from langchain_community.document_loaders import PyPDFLoader, TextLoader
        from langchain_community.retrievers import BM25Retriever
        from langchain_community.vectorstores import FAISS
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        docs = []
        for path in paths:
            loader = PyPDFLoader(str(path)) if path.suffix == ".pdf" else TextLoader(str(path), encoding="utf-8")
            docs.extend(loader.load())
        chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(docs)
        FAISS.from_documents(chunks, self.embeddings)
        BM25Retriever.from_documents(chunks)
        return {"chunks": len(chunks), "chars": sum(len(c.page_content) for c in chunks)}


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paragraphs", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backends", default="torch,onnx-int8", help="embedding.backend values to time")
    parser.add_argument("--data", type=Path, default=KORQUAD)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    corpus, _ = load_korquad(args.data)
    work = Path(tempfile.mkdtemp(prefix="chulcheo-bench-lc-"))
    paths = write_corpus(corpus[: args.paragraphs], work / "docs")
    edits = max(1, round(len(paths) / 100))
    base = Settings(index_dir=work / "unused")
    backends = [b for b in args.backends.split(",") if b]
    pipelines = {}
    for backend in backends:
        settings = base.model_copy(update={"embedding": base.embedding.model_copy(update={"backend": backend})})
        pipelines[backend] = Pipeline(settings)
        pipelines[backend].embedder.embed_documents(["모델을 미리 불러온다."])  # load time is not ingest time
    baseline = LangChainBaseline(resolve_model(base.embedding.model, base.model_dir))

    times: dict[str, list[float]] = {"baseline": []}
    info: dict[str, dict] = {}
    for run in range(args.runs):
        seconds, info["baseline"] = timed(baseline.ingest, paths)
        times["baseline"].append(seconds)
        print(json.dumps({"run": run, "side": "baseline", "s": round(seconds, 2), **info["baseline"]}), flush=True)
        for backend, pipeline in pipelines.items():
            index = work / f"index-{backend}-{run}"
            shutil.rmtree(index, ignore_errors=True)
            pipeline.settings = pipeline.settings.model_copy(update={"index_dir": index})
            seconds, report = timed(pipeline.ingest, [work / "docs"])
            again, same = timed(pipeline.ingest, [work / "docs"])
            assert same.unchanged == len(paths) and same.added == same.updated == 0, same
            for path in [p for p in paths if p.suffix == ".txt"][run * edits : (run + 1) * edits]:
                path.write_text(path.read_text(encoding="utf-8") + f"\n수정 {run}: 이 문단은 다시 검토되었다.\n",
                                encoding="utf-8")
            edit, edited = timed(pipeline.ingest, [work / "docs"])
            assert edited.updated == edits, edited
            for key, value in (("full", seconds), ("unchanged", again), ("edit", edit)):
                times.setdefault(f"{backend}:{key}", []).append(value)
            info[backend] = {"chunks": report.chunks, "embedded_after_edit": edited.embedded}
            print(json.dumps({"run": run, "side": backend, "full_s": round(seconds, 2), "unchanged_s": round(again, 3),
                              "edit_s": round(edit, 2), **info[backend]}), flush=True)

    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "documents": len(paths), "pdf": sum(p.suffix == ".pdf" for p in paths), "edited_per_run": edits,
        "runs": args.runs, "median_s": {k: round(v, 3) for k, v in med.items()},
        "all_s": {k: [round(x, 3) for x in v] for k, v in times.items()}, "info": info,
        "speedup_vs_baseline_full": {
            f"{backend}:{key}": round(med["baseline"] / med[f"{backend}:{key}"], 1)
            for backend in backends for key in ("full", "unchanged", "edit")
        },
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    emit(result, args.out)


if __name__ == "__main__":
    main()
