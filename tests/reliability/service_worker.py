"""One server-side document operation in its own process, for tests that SIGKILL it midway.

Not a test: tests/reliability/test_documents_kept.py starts it as
`sys.executable service_worker.py BASE OP [ARG]` with BASE holding state/ and index/. It builds
the Service over the fast hash embedder (slowed by SERVICE_WORKER_EMBED_SLEEP seconds per
batch, so a kill can land inside the ingest), prints `start`, runs OP and prints `done`:

    reupload FILE     upload FILE's bytes as 규정.txt into group a and wait for its job
    delete DOC_ID     delete one document, then re-index every group and wait
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.auth import OPEN_PRINCIPAL  # noqa: E402
from app.pipeline import Pipeline  # noqa: E402
from app.service import Service  # noqa: E402
from app.settings import Settings  # noqa: E402
from tests.fakes import HashEmbedder  # noqa: E402


class SlowEmbedder(HashEmbedder):
    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def embed_documents(self, texts):
        time.sleep(self.delay)
        return super().embed_documents(texts)


def service_at(base: Path, delay: float = 0.0) -> Service:
    """The Service both the worker and the test build (same settings, same fake model id)."""
    settings = Settings(index_dir=base / "index", state_dir=base / "state")
    embedder = SlowEmbedder(delay) if delay else HashEmbedder()
    return Service.from_settings(settings, pipeline=Pipeline(settings, embedder=embedder))


def main() -> None:
    base, op, arg = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    service = service_at(base, float(os.environ.get("SERVICE_WORKER_EMBED_SLEEP", "0")))
    print("start", flush=True)
    if op == "reupload":
        job = service.upload(OPEN_PRINCIPAL, "규정.txt", Path(arg).read_bytes(), "a")
    elif op == "delete":
        service.delete(OPEN_PRINCIPAL, [arg])
        job = service.reindex(OPEN_PRINCIPAL)
    else:
        raise SystemExit(f"unknown op {op!r}")
    done = service.jobs.wait(job.id, timeout=120)
    print("done", done.status, done.error or "", flush=True)


if __name__ == "__main__":
    main()
