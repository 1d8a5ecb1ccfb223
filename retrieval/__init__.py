"""Retrieval: chunks in, hits out — Korean tokenization, BM25, FAISS, fusion, index generations.

Importing this package is light: no embedding model or torch is loaded here.
"""

from .bm25 import BM25Index
from .dense import DENSE_KINDS, DenseIndex, DenseIndexConfig, DenseKind
from .embed import EmbedCache, Embedder
from .errors import (
    EmbeddingModelMismatch,
    IndexCorruptError,
    IndexNotFoundError,
    RetrievalError,
)
from .fusion import min_max_normalize, reciprocal_rank_fusion, weighted_fusion, z_score
from .retriever import FUSIONS, FusionConfig, HybridRetriever, Mode, SearchFilters
from .store import (
    SCHEMA_VERSION,
    IndexGeneration,
    cleanup_generations,
    current_generation_path,
    new_generation_path,
    open_index,
    publish,
)
from .tokenize import (
    DEFAULT_POS,
    KiwiTokenizer,
    Tokenizer,
    WhitespaceTokenizer,
    tokenizer_from_config,
)
from .types import Chunk, Hit

__all__ = [
    "DEFAULT_POS",
    "DENSE_KINDS",
    "SCHEMA_VERSION",
    "BM25Index",
    "Chunk",
    "EmbedCache",
    "DenseIndex",
    "DenseIndexConfig",
    "DenseKind",
    "Embedder",
    "EmbeddingModelMismatch",
    "Hit",
    "FUSIONS",
    "FusionConfig",
    "HybridRetriever",
    "IndexCorruptError",
    "IndexGeneration",
    "IndexNotFoundError",
    "KiwiTokenizer",
    "Mode",
    "RetrievalError",
    "SearchFilters",
    "Tokenizer",
    "WhitespaceTokenizer",
    "cleanup_generations",
    "current_generation_path",
    "min_max_normalize",
    "new_generation_path",
    "open_index",
    "publish",
    "reciprocal_rank_fusion",
    "tokenizer_from_config",
    "weighted_fusion",
    "z_score",
]
