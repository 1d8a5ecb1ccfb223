"""Errors raised by the index and the retriever."""


class RetrievalError(Exception):
    """Base class for retrieval errors."""


class IndexNotFoundError(RetrievalError):
    """No index generation exists at the given directory."""


class IndexCorruptError(RetrievalError):
    """An index generation is missing files or its files disagree."""


class EmbeddingModelMismatch(RetrievalError):
    """The index was built with a different embedding model than the one configured."""


class EmbeddingServiceError(RetrievalError):
    """An embeddings server (`embedding.url`) could not be reached or answered something
    unusable; the message names the server and the reason."""
