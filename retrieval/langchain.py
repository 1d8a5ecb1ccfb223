"""LangChain adapters at the edge: our retriever and embedder as LangChain components.

`ChulcheoRetriever` is a `BaseRetriever` over `HybridRetriever.search` (hits become
`Document`s); `ChulcheoEmbeddings` is an `Embeddings` over any `Embedder` (arrays become
float lists). The core never sees a LangChain type: this module is the only place they
meet, and `import retrieval` does not import it (langchain_core is loaded here only).

>>> docs = ChulcheoRetriever(retriever=pipeline.retriever, k=2).invoke("연차휴가는 며칠인가요?")
>>> docs[0].metadata["source"], docs[0].metadata["rank"]
('/abs/path/취업규칙.md', 1)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from pydantic import field_validator

from .embed import Embedder
from .retriever import FusionConfig, Mode, SearchFilters
from .types import Hit

__all__ = ["ChulcheoEmbeddings", "ChulcheoRetriever", "hit_to_document"]

_KEEP: Any = object()  # "argument not given" for with_filters, where None means "no restriction"


def hit_to_document(hit: Hit) -> Document:
    """One `Hit` as a LangChain `Document`: the chunk text, and rank, score and provenance as metadata.

    hit_to_document(Hit(chunk=Chunk(chunk_id="/d/규정.txt#0", doc_id="/d/규정.txt",
    text="연차휴가는 15일이다.", source="/d/규정.txt"), score=0.03, rank=1))
    -> Document(id="/d/규정.txt#0", page_content="연차휴가는 15일이다.",
                metadata={"score": 0.03, "rank": 1, "chunk_id": "/d/규정.txt#0", ...})
    """
    chunk = hit.chunk
    return Document(
        id=chunk.chunk_id,
        page_content=chunk.text,
        metadata={
            # Plain Python types: numpy scalars break JSON tracing and vector-store metadata.
            "score": float(hit.score),
            "rank": int(hit.rank),
            "chunk_id": chunk.chunk_id,
            "doc_id": chunk.doc_id,
            "source": chunk.source,
            "page": chunk.page,
            "title": chunk.title,
            "group": chunk.group,
            "heading": chunk.heading,
        },
    )


class ChulcheoRetriever(BaseRetriever):
    """A LangChain retriever over chulcheo's hybrid search.

    `retriever` is either an object with `HybridRetriever.search`'s signature, or a zero-arg
    callable returning one. Prefer the callable (`pipeline.retriever`): it is called on every
    query, so a re-ingest (a new index generation) is picked up without rebuilding this object.
    `filters` restricts every search (e.g. to the asking user's groups); `with_filters` makes
    a restricted copy.

    ChulcheoRetriever(retriever=pipeline.retriever, k=3, filters=SearchFilters(groups={"public"}))
    .invoke("연차휴가는 며칠인가요?") -> [Document(page_content="제4조(연차휴가) …", metadata={...}), ...]
    """

    retriever: Any
    k: int = 4
    mode: Mode = "hybrid"
    filters: SearchFilters | None = None
    fusion: FusionConfig | None = None

    @field_validator("retriever")
    @classmethod
    def _searchable(cls, value: Any) -> Any:
        if not (hasattr(value, "search") or callable(value)):
            raise ValueError(
                f"retriever must have a search() method or be a callable returning such an object, "
                f"got {type(value).__name__}"
            )
        return value

    @field_validator("k")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"k must be >= 1, got {value}")
        return value

    def with_filters(
        self,
        *,
        groups: Iterable[str] | None = _KEEP,
        sources: Iterable[str] | None = _KEEP,
        doc_ids: Iterable[str] | None = _KEEP,
    ) -> ChulcheoRetriever:
        """A copy whose filters replace the given fields; fields not given stay as they are.

        None lifts a restriction, an empty set allows nothing (see `SearchFilters`).
        base.with_filters(groups={"public", "hr"}) -> searches only chunks of group public or hr.
        """
        current = self.filters or SearchFilters()
        filters = SearchFilters(
            groups=_field(groups, current.groups),
            sources=_field(sources, current.sources),
            doc_ids=_field(doc_ids, current.doc_ids),
        )
        return self.model_copy(update={"filters": filters})

    def search(self, query: str) -> list[Hit]:
        """The hits behind `invoke(query)`, as our own `Hit`s."""
        target = self.retriever
        if not hasattr(target, "search"):
            target = target()
            if not hasattr(target, "search"):
                raise TypeError(f"retriever callable returned {type(target).__name__}, which has no search()")
        kwargs: dict[str, Any] = {"k": self.k, "filters": self.filters, "mode": self.mode}
        if self.fusion is not None:  # only HybridRetriever takes it; Pipeline.search does not
            kwargs["fusion"] = self.fusion
        return target.search(query, **kwargs)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [hit_to_document(hit) for hit in self.search(query)]


def _field(value: Any, current: frozenset[str] | set[str] | None) -> Any:
    if value is _KEEP:
        return current
    if value is None or isinstance(value, str):  # SearchFilters rejects a bare str itself
        return value
    return frozenset(value)


class ChulcheoEmbeddings(Embeddings):
    """A LangChain `Embeddings` over any chulcheo `Embedder` (vectors stay L2-normalized).

    ChulcheoEmbeddings(HashEmbedder()).embed_query("안녕하세요") -> [0.0, 0.26, ...] (256 floats)
    Async methods fall back to these in a thread (the `Embeddings` default).
    """

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    @property
    def dim(self) -> int:
        return self.embedder.dim

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        return _floats(self.embedder.embed_documents(list(texts)))

    def embed_query(self, text: str) -> list[float]:
        return _floats(self.embedder.embed_query(text))

    def __repr__(self) -> str:
        return f"ChulcheoEmbeddings({self.embedder.model_id!r})"


def _floats(vectors: np.ndarray) -> Any:
    # tolist() on a float array yields Python floats (what LangChain stores and serializes).
    return np.asarray(vectors, dtype=np.float32).tolist()
