"""Fixtures of the hostile-file tests (shared_kiwi comes from tests/conftest.py).

Names are specific on purpose: other reliability tests in this folder bring their own fixtures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class UploadServer:
    """A Service over fast fakes behind the real HTTP API, with an admin key.

    server.post_file("../../evil.txt", b"...") → the httpx Response of POST /v1/documents?wait=true
    """

    base: Path  # holds state/ and index/, nothing else
    service: object
    client: object
    key: str

    @property
    def state_dir(self) -> Path:
        return self.base / "state"

    def post_file(self, filename: str, data: bytes, group: str = "public"):
        """Upload with the file name sent byte for byte (a client library would escape NUL and quotes)."""
        body, content_type = raw_multipart(filename, data, group)
        return self.client.post(
            "/v1/documents?wait=true",
            content=body,
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": content_type},
        )


def raw_multipart(filename: str, data: bytes, group: str) -> tuple[bytes, str]:
    """A multipart/form-data body with one file part and a `group` field, the name left unescaped.

    raw_multipart("규정.txt", b"x", "public")
    → (b'--chulcheo-...filename="\\xea\\xb7\\x9c...', "multipart/form-data; boundary=chulcheo-...")
    """
    boundary = "chulcheo-hostile-boundary-7f3a"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    tail = (f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="group"\r\n\r\n{group}\r\n'
            f"--{boundary}--\r\n").encode()
    return head + data + tail, f"multipart/form-data; boundary={boundary}"


@pytest.fixture
def upload_server(tmp_path, shared_kiwi, monkeypatch) -> Callable[..., UploadServer]:
    """upload_server(max_upload_mb=1) → an UploadServer under a fresh folder of tmp_path.

    The hash embedder stands in for the real model (uploads are indexed by the same ingest
    code either way); keys (SQLite), jobs, uploads and the index are all real.
    """
    import kiwipiepy
    from fastapi.testclient import TestClient

    from app.server.api import create_app
    from app.pipeline import Pipeline
    from app.service import Service
    from app.settings import ServerSettings, Settings
    from tests.fakes import HashEmbedder

    monkeypatch.setattr(kiwipiepy, "Kiwi", lambda *a, **k: shared_kiwi)  # ~2 s and ~400 MB per Kiwi

    def make(**server) -> UploadServer:
        base = tmp_path / f"server{len(list(tmp_path.glob('server*')))}"
        settings = Settings(index_dir=base / "index", state_dir=base / "state", server=ServerSettings(**server))
        service = Service.from_settings(settings, pipeline=Pipeline(settings, embedder=HashEmbedder()))
        _, key = service.keys.create("admin", "admin", "*")
        # Server errors come back as 500 responses, as a real client would see them.
        client = TestClient(create_app(service, ui=False), raise_server_exceptions=False)
        return UploadServer(base=base, service=service, client=client, key=key)

    return make
