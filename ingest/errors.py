"""Errors raised while reading and indexing documents."""


class IngestError(Exception):
    """Base class for ingestion errors."""


class LoadError(IngestError):
    """A file could not be read into a document; the message names the file and the reason."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):
        # Pickled by state: the default (class, args) would call __init__ with the message alone,
        # and a load error travels back from a Ray worker (ingest.ray_prepare).
        return _restore, (type(self), self.args, dict(self.__dict__))


class UnsupportedFileType(LoadError):
    """The file's extension is not one we read."""


class FileTypeMismatch(UnsupportedFileType):
    """The file's content is another type than its name says (a ZIP named .pdf, a PDF named .txt).

    named: the extension (".pdf"); content: what the bytes are ("a ZIP archive"); rename_to: the
    extension a loader reads that content under, or None.
    """

    def __init__(self, path: object, reason: str, *, named: str, content: str, rename_to: str | None) -> None:
        self.named = named
        self.content = content
        self.rename_to = rename_to
        super().__init__(path, reason)


class EmptyDocumentError(LoadError):
    """The file was read but holds no text (blank file, scanned PDF without a text layer)."""


class NeedsOcrError(EmptyDocumentError):
    """The file's pages are images (a scan, a photo) and OCR is not installed."""


class EncryptedDocumentError(LoadError):
    """The file is password-protected and we cannot open it without the password."""


class UnsafeDocumentError(LoadError):
    """The file exceeds a safety limit (size, zip bomb, XML entity declarations, page count)."""


class IndexLockedError(IngestError):
    """Another writer holds the index lock."""


class ClusterError(IngestError):
    """The Ray cluster of `ingest --ray` is missing, unreachable, or failed during an ingest;
    the message names the address and the reason. Nothing is committed then."""


def _restore(cls: type, args: tuple, state: dict) -> Exception:
    """The LoadError that `LoadError.__reduce__` pickled."""
    exc = Exception.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc
