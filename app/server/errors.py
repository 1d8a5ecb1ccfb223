"""Which HTTP status each of our errors means: the one place the API maps them.

error_status(AuthError("…")) -> (401, "auth")
"""

from __future__ import annotations

import re

from generation.errors import GenerationError
from ingest.errors import IndexLockedError, IngestError, LoadError
from retrieval.errors import EmbeddingModelMismatch, IndexNotFoundError, RetrievalError

from ..auth import AuthError, PermissionDenied
from ..models import ModelNotProvisionedError
from ..limits import RateLimited
from ..service import AnswerTimeout, ClientGone, NotFound, RequestTooLarge, ServerBusy, UploadRejected
from ..sources import NoSource, SourceChanged

class ChatError(ValueError):
    """A chat completion request that cannot be served (HTTP 400, OpenAI type invalid_request_error)."""


class UnknownModel(LookupError):
    """A model other than the ones GET /v1/models lists (HTTP 404, code model_not_found)."""


# Order matters: the first matching class decides (subclasses before their bases).
_STATUS: tuple[tuple[type[BaseException], int, str], ...] = (
    (AuthError, 401, "auth"),
    (PermissionDenied, 403, "forbidden"),
    (NotFound, 404, "not_found"),
    (UnknownModel, 404, "model_not_found"),
    (ChatError, 400, "invalid_request"),
    (NoSource, 404, "not_found"),
    (SourceChanged, 409, "source_changed"),
    (UploadRejected, 422, "upload_rejected"),  # its own status (413, 415, 422) wins, below
    (RequestTooLarge, 413, "too_large"),
    (ClientGone, 499, "client_gone"),  # nobody reads it: the client has gone
    (IndexLockedError, 409, "index_busy"),
    (LoadError, 422, "bad_document"),
    (IndexNotFoundError, 503, "no_index"),
    (EmbeddingModelMismatch, 503, "index_model_mismatch"),
    (ModelNotProvisionedError, 503, "model_missing"),
    (GenerationError, 503, "generation_failed"),
    (ServerBusy, 503, "busy"),
    (RateLimited, 429, "rate_limited"),
    (AnswerTimeout, 504, "timeout"),
    (RetrievalError, 503, "index_unreadable"),
    (IngestError, 500, "ingest_failed"),
    (ValueError, 422, "invalid"),
)

HANDLED: tuple[type[BaseException], ...] = tuple(t for t, _, _ in _STATUS)


def error_status(exc: BaseException) -> tuple[int, str]:
    """(HTTP status, short kind) for an exception; unknown ones are (500, "internal")."""
    if isinstance(exc, UploadRejected):
        return exc.status, "upload_rejected"
    for exc_type, status, kind in _STATUS:
        if isinstance(exc, exc_type):
            return status, kind
    return 500, "internal"


_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/:'\"]+/)+([^\s/:'\"]+)")


def scrub_paths(text: str) -> str:
    """Error text as a client may see it: absolute server paths shortened to their last part.

    scrub_paths("/srv/chulcheo/index: no index yet") -> "index: no index yet"
    """
    return _ABSOLUTE_PATH.sub(r"\1", text)
