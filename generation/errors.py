"""Errors of the generation package."""


class GenerationError(RuntimeError):
    """The LLM backend could not produce an answer (server down, model missing, bad output)."""


class BackendUnavailableError(GenerationError, ImportError):
    """The backend's optional dependency is not installed; the message names the pip extra."""
