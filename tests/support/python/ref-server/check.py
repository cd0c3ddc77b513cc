"""Proves the ref-server environment can run ref_server.py (venv.py runs it after installing)."""

import os

os.environ.setdefault("DD_TRACE_ENABLED", "false")

import fastapi  # noqa: E402,F401
import multipart  # noqa: E402,F401
import uvicorn  # noqa: E402,F401
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2  # noqa: E402,F401
from weave.trace_server.external_to_internal_trace_server_adapter import ExternalTraceServer  # noqa: E402,F401
from weave.trace_server.sqlite_trace_server import SqliteTraceServer  # noqa: E402,F401
