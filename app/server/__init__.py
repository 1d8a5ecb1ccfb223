"""`chulcheo serve`: the HTTP API and the web UI over one Service.

api.py (FastAPI `/v1`), guard.py (auth and size caps before a body is read), streams.py
(answers stopped when the client goes away), errors.py (our errors → HTTP status), metrics.py,
ui.py + ui_render.py + ui_auth.py (Gradio UI, its rendering, login and file checks).
Imported lazily: `from app.server.api import create_app` (FastAPI and Gradio load only then).
"""
