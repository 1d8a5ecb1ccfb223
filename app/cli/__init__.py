"""The `chulcheo` command line (typer): one thin adapter over the Pipeline and the Service.

main.py (ingest, search, docs, models, eval, …), answer.py (ask, verify, eval answers),
serve.py (serve, keys), common.py (options, JSON output, error handling shared by them).
"""

from .main import app, main

__all__ = ["app", "main"]
