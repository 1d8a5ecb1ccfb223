"""One object that owns the models and the index; the CLI, API and UI are thin adapters over it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TypeVar

from ingest.manifest import DocEntry, Manifest
from ingest.pending import Waiting, WaitingForOcr
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
from .components import make_embedder, make_generator_from_settings
from .settings import Settings
from .writing import MB, IndexWriting, ingest_tools

__all__ = ["MB", "Pipeline", "ingest_tools", "make_embedder", "make_generator_from_settings"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class Pipeline(IndexWriting):
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
        self._ocr = False  # not looked up yet
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

    # ------------------------------------------------------------------ reading
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
