"""`chulcheo serve` (API + web UI in one process), `chulcheo mcp` (MCP over stdio) and `chulcheo keys` (API keys)."""

from __future__ import annotations

import ipaddress
import logging
import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from .common import IndexOpt, JsonOpt, _emit, _fatal_errors, _settings, err, out

keys_app = typer.Typer(no_args_is_help=True, help="Create, list and revoke API keys (stored hashed).")
audit_app = typer.Typer(no_args_is_help=True, help="The audit log: verify its hash chain, export entries.")
feedback_app = typer.Typer(no_args_is_help=True, help="Ratings of answers: export them as an evaluation set.")


def serve(
    host: Annotated[str | None, typer.Option("--host", help="Address to listen on (default 127.0.0.1: this machine only).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default 8000).")] = None,
    open_mode: Annotated[bool, typer.Option("--open", help="Single-user demo: no API keys, every caller is admin.")] = False,
    index: IndexOpt = None,
    no_ui: Annotated[bool, typer.Option("--no-ui", help="API only, no web UI at /.")] = False,
) -> None:
    """Serve the web UI at / and the API at /v1 (OpenAPI at /docs); models are loaded once and shared."""
    with _fatal_errors():
        import uvicorn

        from ..server.api import create_app
        from ..service import Service

        settings = _settings(index)
        host = host or settings.server.host
        port = port or settings.server.port
        if open_mode and not _loopback(host):
            raise ValueError(f"--open with --host {host}: the no-key demo mode makes every caller an admin; "
                             "it only listens on this machine (127.0.0.1). Create keys to serve the network")
        # Request bodies FastAPI spools and the UI's uploads stay inside the state folder, which the
        # operator sizes and protects, never in the shared /tmp.
        scratch = Path(settings.state_dir).resolve() / "tmp"
        scratch.mkdir(parents=True, exist_ok=True)
        os.environ["TMPDIR"] = str(scratch)
        tempfile.tempdir = str(scratch)
        service = Service.from_settings(settings, open_mode=open_mode)
        if not open_mode and service.keys is not None and service.keys.count() == 0:
            err.print("[yellow]no API keys yet:[/yellow] create one with "
                      "`chulcheo keys create --name admin --role admin --groups '*'` (or use --open for a demo)")
        app = create_app(service, ui=not no_ui)
        # Models load while the port is already open: /healthz answers, /readyz says "loading models".
        service.start_warm_up()
        err.print(f"chulcheo: http://{host}:{port}/ (API /v1, OpenAPI /docs){' — open mode, no keys' if open_mode else ''}")
        logging.basicConfig(level=logging.INFO)
        # proxy_headers off: the client address is the connection's peer, which auth.trusted_proxies
        # is checked against (uvicorn would otherwise take X-Forwarded-For from 127.0.0.1)
        uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)


def mcp(
    key: Annotated[str | None, typer.Option("--key", envvar="CHULCHEO_API_KEY", show_envvar=True,
                                            help="Act as this API key: its groups filter every tool call.")] = None,
    all_groups: Annotated[bool, typer.Option("--all-groups", help="No key: every group (the operator's own agent).")] = False,
    index: IndexOpt = None,
) -> None:
    """Serve the MCP tools (search, ask, list_documents, get_passage) over stdio, for a desktop agent."""
    with _fatal_errors():
        from ..auth import OPEN_PRINCIPAL
        from ..server.mcp_tools import build_mcp
        from ..service import Service

        settings = _settings(index)
        if not key and not all_groups:
            raise ValueError("chulcheo mcp: give --key (or CHULCHEO_API_KEY) with a key from `chulcheo keys create`, "
                             "or --all-groups for an agent of the operator that may read every group")
        service = Service.from_settings(settings, open_mode=all_groups and not key)
        who = service.authenticate(key) if key else OPEN_PRINCIPAL  # checked now: a bad key fails at start
        server = build_mcp(service, lambda ctx: who)
        logging.basicConfig(level=logging.WARNING)  # stderr: stdout carries the protocol
        server.run("stdio")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _store():
    """The key store of the configured state (state.url, else the state directory's SQLite file)."""
    from ..auth import KeyStore
    from ..state import state_database

    return KeyStore(state_database(_settings(None)))


def _audit():
    """The audit log of the configured state (state.url, else the state directory)."""
    from ..audit import AuditLog
    from ..state import state_database

    settings = _settings(None)
    return AuditLog(state_database(settings), settings.audit)


@audit_app.command("verify")
def audit_verify(as_json: JsonOpt = False) -> None:
    """Check the audit log's hash chain: a removed or edited entry is named (exit 1)."""
    with _fatal_errors():
        check = _audit().verify()
    if as_json:
        _emit({"ok": check.ok, "entries": check.entries, "problem": check.problem})
    elif check.ok:
        out.print(f"감사 로그 정상: 항목 {check.entries}개, 해시 체인이 이어집니다")
    else:
        err.print(Text(f"감사 로그 변조 발견: {check.problem}"))
    raise typer.Exit(0 if check.ok else 1)


@audit_app.command("export")
def audit_export(
    since: Annotated[str | None, typer.Option("--since", help="ISO date or time, e.g. 2026-12-01.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    output: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Write audit entries (oldest first) as JSON lines or CSV."""
    import json

    with _fatal_errors():
        if fmt not in ("jsonl", "csv"):
            raise ValueError(f"--format {fmt!r}: use jsonl or csv")
        log = _audit()
        entries = log.entries(since=since)
        text = (log.to_csv(entries) if fmt == "csv"
                else "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries))
        _write_out(text, output, f"{len(entries)} entries")


@feedback_app.command("export")
def feedback_export(
    output: Annotated[Path | None, typer.Option("--out", help="Write the QA JSONL here instead of stdout.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Ratings from this ISO date or time.")] = None,
    liked: Annotated[bool, typer.Option("--liked/--reviewed-only",
                                        help="Also 👍 answers (their cited documents as gold).")] = True,
    index: IndexOpt = None,
) -> None:
    """Write ratings as QA JSONL for `chulcheo eval answers --docs … --qa FILE`: reviewed ones
    (the right passage and answer an admin marked) and 👍 answers."""
    import json

    with _fatal_errors():
        from ..feedback import cases_from
        from ..pipeline import Pipeline
        from ..state import FeedbackStore, state_database

        settings = _settings(index)
        rows = FeedbackStore(state_database(settings)).list(limit=10_000_000, since=since)
        cases = cases_from(rows, [d.doc_id for d in Pipeline(settings).documents()], liked)
        _write_out("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases), output, f"{len(cases)} test cases")


def _write_out(text: str, output: Path | None, what: str) -> None:
    """Exported text into `output` (saying how much went there), or to stdout."""
    if output is not None:
        output.write_text(text, encoding="utf-8")
        err.print(f"{what} -> {output}")
    else:
        typer.echo(text, nl=False)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="Who the key is for (also the web UI login name).")],
    role: Annotated[str, typer.Option("--role", help="user (ask, search, verify) or admin (also documents, re-indexing, keys).")] = "user",
    groups: Annotated[str, typer.Option("--groups", help="Access groups, comma-separated (hr,finance), or * for all.")] = "public",
    as_json: JsonOpt = False,
) -> None:
    """Create an API key and print it once (only a hash is stored)."""
    with _fatal_errors():
        principal, key = _store().create(name, role, groups)
        _audit().record(None, "key_create", route="cli", detail=f"{name} role={role} groups={groups}")
    if as_json:
        _emit({**principal.to_dict(), "key": key})
        return
    out.print(Text(key))
    err.print(f"key for {principal.name} ({principal.role}; groups {', '.join(principal.to_dict()['groups'])}): "
              "shown once, store it now")


@keys_app.command("list")
def keys_list(as_json: JsonOpt = False) -> None:
    """List API keys (names, roles, groups; never the keys)."""
    with _fatal_errors():
        keys = _store().list()
    if as_json:
        _emit({"keys": keys})
        return
    table = Table("이름", "키 ID", "역할", "그룹", "생성")
    for k in keys:
        table.add_row(Text(str(k["name"])), str(k["key_id"]), str(k["role"]), Text(", ".join(k["groups"])), str(k["created"]))
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="Key name or key id.")], as_json: JsonOpt = False) -> None:
    """Revoke (delete) an API key; requests with it get 401 from then on."""
    with _fatal_errors():
        revoked = _store().revoke(name)
        _audit().record(None, "key_revoke", route="cli", detail=name, outcome="ok" if revoked else "error: NotFound")
    if as_json:
        _emit({"revoked": name if revoked else None})
    elif revoked:
        out.print(Text(f"revoked: {name}"))
    else:
        err.print(Text(f"no such key: {name}"))
    raise typer.Exit(0 if revoked else 1)
