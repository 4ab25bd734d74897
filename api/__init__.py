"""Vigil's HTTP API: FastAPI routes under /v1 that call the engine (api/app.py), and the small client the CLI
uses to ask a running server (api/client.py)."""
