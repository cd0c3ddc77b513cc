#!/usr/bin/env python3
"""weave-rs's reference Weave trace server: the weave package's own server code over HTTP.

The remote backend's tests (tests/it, tests/remote) need a real Weave trace server to
talk to. W&B's production HTTP service is not published, but the weave package (up to
0.52.42) ships what sits behind it:

* storage and query semantics: ``SqliteTraceServer``;
* the external <-> internal translation of project ids and refs: ``ExternalTraceServer``
  with an ``IdConverter`` (external ``entity/project``, internal an opaque id);
* the request and response models (``trace_server_interface``), which validate bodies;
* the exception -> HTTP status registry (``errors.handle_server_exception``).

This file only adds the HTTP layer: FastAPI routes for the paths the Rust remote backend and
the Python client (weave 0.54.0) call, a fixed user stamped on every write, a stub of the
few W&B GraphQL queries ``weave.init`` makes, and every route again under ``/traces``.

The request model of each route is read from the type annotations of the
``ExternalTraceServer`` method it calls, and a method returning an iterator is answered as
JSON lines, so the table below names only paths and methods.

Version skew: the newest weave with ``SqliteTraceServer`` is 0.52.42; newer clients send a
few fields its strict models do not know (``latest_only: false``, ``span_agent_name: ""``,
...). Such a field is ignored when its value means "nothing" (null, false, "", [], {}) and
named in the ``X-Ref-Server-Ignored`` response header; ``--strict`` refuses it instead (422).

Usage: python ref_server.py --port 6345 --db /tmp/ref.db   (loopback only; see --help)
Needs the ``ref-server`` venv (tests/support/python/venv.py ref-server).
"""

from __future__ import annotations

import os

# The server modules import ddtrace: keep it from tracing or looking for an agent.
for _k, _v in {
    "DD_TRACE_ENABLED": "false",
    "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false",
    "DD_REMOTE_CONFIGURATION_ENABLED": "false",
}.items():
    os.environ.setdefault(_k, _v)

import argparse
import asyncio
import base64
import binascii
import collections.abc
import concurrent.futures
import gzip
import json
import logging
import sys
import typing
import warnings
import zlib
from dataclasses import dataclass
from typing import Any, Callable

import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

from weave.trace_server import trace_server_interface as tsi
from weave.trace_server.errors import handle_server_exception
from weave.trace_server.external_to_internal_trace_server_adapter import (
    ExternalTraceServer,
    IdConverter,
)
from weave.trace_server.sqlite_trace_server import SqliteTraceServer
from weave.version import VERSION as WEAVE_VERSION

log = logging.getLogger("weave_rs_ref_server")

IGNORED_HEADER = "X-Ref-Server-Ignored"

# The one user every request is made by (any credential, or none, is accepted), and the
# W&B entity the GraphQL stub names as its default. The tests rely on both names.
USER_ID = "ref-user-id"
USERNAME = "ref-user"
DEFAULT_ENTITY = "ref-entity"


# --- ids -----------------------------------------------------------------------------


class Base64Ids(IdConverter):
    """Internal ids are the standard base64 of the external ones.

    Stateless, so a database outlives its server (the fault tests restart it), and
    reversible, so ids the package stores verbatim (a feedback row's user inside a call's
    summary, a price's project) read back as recognisable base64 text.
    """

    @staticmethod
    def _enc(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    @staticmethod
    def _dec(text: str) -> str | None:
        try:
            return base64.b64decode(text, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None

    def ext_to_int_project_id(self, project_id: str) -> str:
        return self._enc(project_id)

    def int_to_ext_project_id(self, project_id: str) -> str | None:
        return self._dec(project_id)

    def ext_to_int_run_id(self, run_id: str) -> str:
        return self._enc(run_id)

    def int_to_ext_run_id(self, run_id: str) -> str:
        return self._dec(run_id) or run_id

    def ext_to_int_user_id(self, user_id: str) -> str:
        return self._enc(user_id)

    def int_to_ext_user_id(self, user_id: str) -> str:
        return self._dec(user_id) or user_id


# --- the server behind the routes ----------------------------------------------------------


def stamp_user(value: Any, user_id: str) -> None:
    """Sets every ``wb_user_id`` field of a parsed request to the caller, as W&B does."""
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            if name == "wb_user_id":
                setattr(value, name, user_id)
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                stamp_user(getattr(value, name), user_id)
    elif isinstance(value, dict):
        for v in value.values():
            stamp_user(v, user_id)
    elif isinstance(value, (list, tuple)):
        for v in value:
            stamp_user(v, user_id)


class Backend:
    """``SqliteTraceServer`` behind ``ExternalTraceServer``, used from one thread only.

    SQLite connections belong to the thread that opened them, so every call (including
    draining a streamed answer) runs on one worker thread; requests are served one at a
    time, which is what a correctness reference needs.
    """

    def __init__(self, db: str, reset: bool) -> None:
        self.worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sqlite")
        self.internal = SqliteTraceServer(db)
        self.server = ExternalTraceServer(
            self.internal,
            Base64Ids(),
            username_resolver=lambda uid: USERNAME if uid == USER_ID else None,
        )
        self.worker.submit(self._setup, reset).result()

    def _setup(self, reset: bool) -> None:
        if reset:
            self.internal.drop_tables()
        self.internal.setup_tables()

    def _upsert_batch(self, req: tsi.CallCreateBatchReq) -> tsi.CallCreateBatchRes:
        # The adapter has no call_start_batch; do what SqliteTraceServer's does (each item
        # in order) through the adapter's own start and end, which convert the ids.
        out: list[Any] = []
        for item in req.batch:
            if isinstance(item, tsi.CallBatchStartMode) and item.mode == "start":
                out.append(self.server.call_start(item.req))
            elif isinstance(item, tsi.CallBatchEndMode) and item.mode == "end":
                out.append(self.server.call_end(item.req))
            else:
                raise ValueError("Invalid mode")
        return tsi.CallCreateBatchRes(res=out)

    def _run(self, method: str, req: BaseModel) -> Any:
        stamp_user(req, USER_ID)
        if method == "call_start_batch":
            return self._upsert_batch(typing.cast(tsi.CallCreateBatchReq, req))
        if method not in vars(ExternalTraceServer):
            # Reached only through the adapter's __getattr__, i.e. with external ids passed
            # to SQLite unconverted: refuse rather than store them.
            raise NotImplementedError(f"{method} has no id conversion in ExternalTraceServer")
        res = getattr(self.server, method)(req)
        if isinstance(res, collections.abc.Iterator):
            return [to_json(item) for item in res]
        return res

    async def run(self, method: str, req: BaseModel) -> Any:
        return await asyncio.wrap_future(self.worker.submit(self._run, method, req))


# --- request and response plumbing ------------------------------------------------------


def to_json(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    return value


def json_response(value: Any, headers: dict[str, str] | None = None, status: int = 200) -> Response:
    body = json.dumps(to_json(value), separators=(",", ":"), ensure_ascii=False)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def error_response(exc: Exception) -> Response:
    if isinstance(exc, NotImplementedError):
        return json_response({"reason": f"not implemented by the SQLite reference server: {exc}"}, status=501)
    err = handle_server_exception(exc)
    if err.status_code >= 500:
        log.error("request failed", exc_info=exc)
    return json_response(err.message, status=err.status_code)


def body_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors as FastAPI reports a body that does not fit its model."""
    return [
        {**e, "loc": ("body", *e["loc"])}
        for e in exc.errors(include_url=False)
    ]


def neutral(value: Any) -> bool:
    if isinstance(value, (list, dict, str)):
        return len(value) == 0 or value == "UNSET"
    return value is None or value is False


def remove_at(doc: Any, loc: tuple[Any, ...]) -> bool:
    *parents, last = loc
    for key in parents:
        try:
            doc = doc[key]
        except (KeyError, IndexError, TypeError):
            return False
    if isinstance(doc, dict) and last in doc:
        del doc[last]
        return True
    return False


def parse(model: type[BaseModel], doc: dict[str, Any], strict: bool) -> tuple[BaseModel, list[str]]:
    """Validates ``doc``; unless strict, first drops unknown fields that carry no value."""
    ignored: list[str] = []
    while True:
        try:
            return model.model_validate(doc), ignored
        except ValidationError as exc:
            if strict:
                raise RequestValidationError(body_errors(exc)) from None
            dropped = [
                e["loc"]
                for e in exc.errors(include_url=False)
                if e["type"] == "extra_forbidden" and neutral(e.get("input"))
            ]
            dropped = [loc for loc in dropped if remove_at(doc, tuple(loc))]
            if not dropped:
                raise RequestValidationError(body_errors(exc)) from None
            ignored += [".".join(map(str, loc)) for loc in dropped]


async def json_body(request: Request) -> dict[str, Any]:
    """The body as a JSON object, whatever its Content-Type (the Python client sends none)."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as e:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body", e.pos), "msg": "JSON decode error", "input": {}, "ctx": {"error": e.msg}}]
        ) from None
    if not isinstance(doc, dict):
        raise RequestValidationError(
            [{"type": "model_attributes_type", "loc": ("body",), "msg": "Input should be a valid dictionary or object to extract fields from", "input": doc}]
        )
    return doc


def request_model(method: str) -> tuple[type[BaseModel], bool]:
    """The request model of an ``ExternalTraceServer`` method, and whether it streams."""
    hints = typing.get_type_hints(getattr(ExternalTraceServer, method))
    returns = hints.get("return")
    streams = typing.get_origin(returns) in (collections.abc.Iterator, collections.abc.Iterable)
    return hints["req"], streams


def is_list(model: type[BaseModel], field: str) -> bool:
    info = model.model_fields.get(field)
    if info is None:
        return False
    kinds = [info.annotation, *typing.get_args(info.annotation)]
    return any(k in (list, set, tuple) or typing.get_origin(k) in (list, set, tuple) for k in kinds)


# --- routes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    verb: str
    path: str
    method: str


def routes() -> list[Route]:
    post = lambda path, method: Route("POST", path, method)  # noqa: E731
    table = [
        # calls
        post("/call/start", "call_start"),
        post("/call/end", "call_end"),
        post("/call/upsert_batch", "call_start_batch"),
        post("/call/read", "call_read"),
        post("/call/update", "call_update"),
        post("/calls/delete", "calls_delete"),
        post("/calls/query", "calls_query"),
        post("/calls/stream_query", "calls_query_stream"),
        post("/calls/query_stats", "calls_query_stats"),
        post("/calls/stats", "call_stats"),
        post("/calls/usage", "calls_usage"),
        post("/trace/usage", "trace_usage"),
        post("/threads/stream_query", "threads_query_stream"),
        post("/v2/{entity}/{project}/calls/complete", "calls_complete"),
        post("/v2/{entity}/{project}/call/start", "call_start_v2"),
        post("/v2/{entity}/{project}/call/end", "call_end_v2"),
        # objects, tables, refs, files
        post("/obj/create", "obj_create"),
        post("/obj/read", "obj_read"),
        post("/objs/query", "objs_query"),
        post("/obj/delete", "obj_delete"),
        Route("PUT", "/objs/{object_id}/versions/{digest}/tags", "obj_add_tags"),
        post("/objs/{object_id}/versions/{digest}/tags/remove", "obj_remove_tags"),
        Route("PUT", "/objs/{object_id}/aliases", "obj_set_aliases"),
        post("/objs/{object_id}/aliases/remove", "obj_remove_aliases"),
        Route("GET", "/tags", "tags_list"),
        Route("GET", "/aliases", "aliases_list"),
        post("/table/create", "table_create"),
        post("/table/update", "table_update"),
        post("/table/create_from_digests", "table_create_from_digests"),
        post("/table/query", "table_query"),
        post("/table/query_stream", "table_query_stream"),
        post("/table/query_stats", "table_query_stats"),
        post("/table/query_stats_batch", "table_query_stats_batch"),
        post("/refs/read_batch", "refs_read_batch"),
        post("/file/content", "file_content_read"),
        post("/files/content", "file_content_read"),
        post("/files/query_stats", "files_stats"),
        post("/files/stats", "files_stats"),
        # feedback and costs
        post("/feedback/create", "feedback_create"),
        post("/feedback/batch/create", "feedback_create_batch"),
        post("/feedback/query", "feedback_query"),
        post("/feedback/purge", "feedback_purge"),
        post("/feedback/replace", "feedback_replace"),
        post("/feedback/stats", "feedback_stats"),
        post("/feedback/payload_schema", "feedback_payload_schema"),
        post("/cost/create", "cost_create"),
        post("/cost/query", "cost_query"),
        post("/cost/purge", "cost_purge"),
        # project settings
        post("/project/stats", "project_stats"),
        post("/project/ttl_settings/read", "project_ttl_settings_read"),
        post("/project/ttl_settings/update", "project_ttl_settings_update"),
    ]
    # The v2 object REST routes of the newest client.
    for plural, stem in [
        ("ops", "op"),
        ("datasets", "dataset"),
        ("scorers", "scorer"),
        ("evaluations", "evaluation"),
        ("models", "model"),
    ]:
        base = f"/v2/{{entity}}/{{project}}/{plural}"
        table += [
            Route("POST", base, f"{stem}_create"),
            Route("GET", base, f"{stem}_list"),
            Route("GET", base + "/{object_id}/versions/{digest}", f"{stem}_read"),
            Route("DELETE", base + "/{object_id}", f"{stem}_delete"),
        ]
    return [r for r in table if r.method == "call_start_batch" or hasattr(ExternalTraceServer, r.method)]


def build_app(backend: Backend, args: argparse.Namespace) -> FastAPI:
    app = FastAPI(title=f"weave-rs reference trace server (weave {WEAVE_VERSION}, SQLite)")
    api = APIRouter()

    def endpoint(route: Route) -> Callable[[Request], Any]:
        if route.method == "call_start_batch":
            model, streams = tsi.CallCreateBatchReq, False
        else:
            model, streams = request_model(route.method)

        async def handle(request: Request) -> Response:
            doc: dict[str, Any] = {}
            if route.verb in ("GET", "DELETE"):
                for key in request.query_params:
                    values = request.query_params.getlist(key)
                    name = key.removesuffix("[]")
                    doc[name] = values if is_list(model, name) else values[-1]
            if route.verb != "GET":
                doc.update(await json_body(request))
            params = dict(request.path_params)
            if "entity" in params:
                project_id = f"{params.pop('entity')}/{params.pop('project')}"
                if "project_id" in model.model_fields:
                    doc["project_id"] = project_id
            doc.update(params)
            req, ignored = parse(model, doc, args.strict)
            try:
                res = await backend.run(route.method, req)
            except Exception as exc:  # noqa: BLE001 - the registry decides the status
                return error_response(exc)
            headers = {IGNORED_HEADER: ",".join(ignored)[:2000]} if ignored else None
            if streams:
                lines = "".join(json.dumps(item, separators=(",", ":"), ensure_ascii=False) + "\n" for item in res)
                return Response(lines, media_type="application/jsonl", headers=headers)
            if isinstance(res, tsi.FileContentReadRes):
                return Response(res.content, media_type="application/octet-stream", headers=headers)
            return json_response(res, headers)

        return handle

    for route in routes():
        api.add_api_route(route.path, endpoint(route), methods=[route.verb], name=f"{route.verb} {route.path}")

    @api.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/server_info")
    async def server_info() -> dict[str, Any]:
        return {"min_required_weave_python_version": "0.0.0", "trace_server_version": WEAVE_VERSION}

    async def file_create(request: Request) -> Response:
        form = await request.form()
        doc: dict[str, Any] = {"project_id": form.get("project_id")}
        if form.get("expected_digest"):
            doc["expected_digest"] = form.get("expected_digest")
        upload = form.get("file")
        if upload is not None and not isinstance(upload, str):
            doc["name"] = upload.filename or "file"
            doc["content"] = await upload.read()
        req, _ = parse(tsi.FileCreateReq, doc, strict=True)
        try:
            return json_response(await backend.run("file_create", req))
        except Exception as exc:  # noqa: BLE001
            return error_response(exc)

    api.add_api_route("/file/create", file_create, methods=["POST"])
    api.add_api_route("/files/create", file_create, methods=["POST"])

    @api.post("/otel/v1/traces")
    async def otel_traces(request: Request) -> Response:
        return await otlp_export(backend, request)

    @api.post("/graphql")
    async def graphql(request: Request) -> Response:
        return wandb_graphql(await json_body(request), args)

    app.include_router(api)
    app.include_router(api, prefix="/traces")
    return app


# --- OTLP/HTTP ------------------------------------------------------------------------------


def otlp_ids_to_base64(node: Any) -> Any:
    """OTLP/JSON spells trace and span ids in hex; protobuf's JSON mapping wants base64."""
    if isinstance(node, list):
        return [otlp_ids_to_base64(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str) and value:
            try:
                value = base64.b64encode(bytes.fromhex(value)).decode()
            except ValueError:
                pass
        out[key] = otlp_ids_to_base64(value)
    return out


async def otlp_export(backend: Backend, request: Request) -> Response:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as pb

    raw = await request.body()
    encoding = request.headers.get("content-encoding", "").lower()
    if encoding == "gzip":
        raw = gzip.decompress(raw)
    elif encoding == "deflate":
        raw = zlib.decompress(raw)
    as_json = "json" in request.headers.get("content-type", "").lower()
    project_id = request.headers.get("project_id") or request.headers.get("project-id") or ""
    if project_id.count("/") != 1:
        return json_response({"reason": "the project_id header must be 'entity/project'"}, status=400)
    entity, project = project_id.split("/")
    export = pb.ExportTraceServiceRequest()
    try:
        if as_json:
            json_format.ParseDict(otlp_ids_to_base64(json.loads(raw)), export)
        else:
            export.ParseFromString(raw)
    except Exception as exc:  # noqa: BLE001
        return json_response({"reason": f"not an OTLP export request: {exc}"}, status=400)
    req = tsi.OTelExportReq(
        project_id=project_id,
        processed_spans=[
            tsi.ProcessedResourceSpans(entity=entity, project=project, run_id=None, resource_spans=spans)
            for spans in export.resource_spans
        ],
    )
    try:
        res = await backend.run("otel_export", req)
    except Exception as exc:  # noqa: BLE001
        return error_response(exc)
    answer = pb.ExportTraceServiceResponse()
    if res.partial_success is not None:
        answer.partial_success.rejected_spans = res.partial_success.rejected_spans
        answer.partial_success.error_message = res.partial_success.error_message
    if as_json:
        return Response(json_format.MessageToJson(answer), media_type="application/json")
    return Response(answer.SerializeToString(), media_type="application/x-protobuf")


# --- W&B GraphQL stub ---------------------------------------------------------------------


def wandb_graphql(doc: dict[str, Any], args: argparse.Namespace) -> Response:
    """The W&B API queries ``weave.init`` makes: the viewer, a project, creating a project.

    Every project exists; the viewer is the server's one user.
    """
    query = doc.get("query") or ""
    variables = doc.get("variables") or {}
    if "viewer" in query:
        data: dict[str, Any] = {"viewer": {"username": USERNAME, "defaultEntity": {"name": DEFAULT_ENTITY}}}
    elif "upsertModel" in query:
        data = {"upsertModel": {"model": {"name": variables.get("name"), "description": variables.get("description") or ""}}}
    elif "project(" in query.replace(" ", ""):
        data = {"project": {"name": variables.get("name")}}
    elif "serverInfo" in query:
        data = {"serverInfo": {"frontendHost": f"http://{args.host}:{args.port}"}}
    else:
        return json_response({"data": None, "errors": [{"message": "the reference server's W&B stub does not know this query"}]})
    return json_response({"data": data})


# --- traffic log -----------------------------------------------------------------------------


def readable(body: bytes, content_type: str) -> Any:
    """A body as the traffic log keeps it: JSON parsed, JSON lines as a list, else a summary."""
    if not body:
        return None
    kind = content_type.lower()
    text = body.decode("utf-8", errors="replace")
    try:
        if "jsonl" in kind:
            return {"jsonl": [json.loads(line) for line in text.splitlines() if line.strip()]}
        if "json" in kind or (not kind and text.lstrip()[:1] in ("{", "[")):
            return json.loads(text)
    except json.JSONDecodeError:
        pass
    if kind.startswith("text/"):
        return {"text": text}
    return {"content_type": content_type, "bytes": len(body)}


class TrafficLog:
    """ASGI middleware appending one JSON line per exchange (requests, answers) to a file."""

    KEPT_HEADERS = ("content-type", "content-encoding", "accept", "project_id", "user-agent")

    def __init__(self, app: Any, path: str) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request: list[bytes] = []
        response: list[bytes] = []
        answer: dict[str, Any] = {}

        async def receive_logged() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "http.request":
                request.append(message.get("body", b""))
            return message

        async def send_logged(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["headers"] = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
            elif message["type"] == "http.response.body":
                response.append(message.get("body", b""))
                if not message.get("more_body"):
                    self.write(scope, b"".join(request), answer, b"".join(response))
            await send(message)

        await self.app(scope, receive_logged, send_logged)

    def write(self, scope: dict[str, Any], request: bytes, answer: dict[str, Any], response: bytes) -> None:
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        out_headers = answer.get("headers", {})
        entry = {
            "method": scope["method"],
            "path": scope["path"],
            "query": scope.get("query_string", b"").decode(),
            "request_headers": {k: v for k, v in headers.items() if k in self.KEPT_HEADERS},
            "request_body": readable(request, headers.get("content-type", "")),
            "status": answer.get("status"),
            "response_content_type": out_headers.get("content-type"),
            "response_body": readable(response, out_headers.get("content-type", "")),
        }
        if IGNORED_HEADER.lower() in out_headers:
            entry["ignored_fields"] = out_headers[IGNORED_HEADER.lower()]
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")


# --- main ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="weave-rs reference Weave trace server (loopback only)")
    p.add_argument("--port", type=int, default=6345)
    p.add_argument("--db", default="ref.db", help="SQLite database file (created if missing)")
    p.add_argument("--host", default="127.0.0.1", help="a loopback address")
    p.add_argument("--reset", action="store_true", help="drop every table first")
    p.add_argument("--strict", action="store_true", help="refuse unknown request fields even when empty")
    p.add_argument("--log-jsonl", metavar="FILE", help="append every request and answer to FILE, one JSON line each")
    p.add_argument("--log-level", default="warning")
    args = p.parse_args(argv)
    if not (args.host.startswith("127.") or args.host in ("localhost", "::1")):
        p.error("the reference server binds loopback addresses only")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    backend = Backend(args.db, args.reset)
    app: Any = build_app(backend, args)
    if args.log_jsonl:
        app = TrafficLog(app, args.log_jsonl)
    print(
        f"weave-rs reference trace server: weave {WEAVE_VERSION} on http://{args.host}:{args.port}, db {args.db}",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
