"""Reading documents and building the index: files → SourceDoc → Chunk → generation."""

from .build import IndexBuilder, IngestReport, expand_paths
from .chunk import Chunker, SentenceSplitter, chunk_id, record_id_of
from .errors import FileTypeMismatch, IndexLockedError, IngestError, LoadError, UnsupportedFileType
from .load import LoadLimits, jsonl_doc_id, load_file
from .manifest import ChangePlan, DocEntry, Manifest, plan_changes
from .types import Block, SourceDoc

__all__ = [
    "Block", "ChangePlan", "Chunker", "DocEntry", "FileTypeMismatch", "IndexBuilder", "IndexLockedError",
    "IngestError", "IngestReport", "LoadError", "LoadLimits", "Manifest", "SentenceSplitter",
    "SourceDoc", "UnsupportedFileType", "chunk_id", "expand_paths", "jsonl_doc_id", "load_file", "plan_changes",
    "record_id_of",
]
