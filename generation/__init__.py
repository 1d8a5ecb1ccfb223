"""generation: chat messages in, draft answer text out, through one of three LLM backends.

Backends (llama_cpp, transformers, openai_compat) are imported by `make_generator` only when
chosen, so importing this package stays light.
"""

from .errors import BackendUnavailableError, GenerationError
from .factory import make_generator
from .scripted import ScriptedGenerator
from .types import Completion, GenerationParams, Generator, Message

__all__ = [
    "BackendUnavailableError",
    "Completion",
    "GenerationError",
    "GenerationParams",
    "Generator",
    "Message",
    "ScriptedGenerator",
    "make_generator",
]
