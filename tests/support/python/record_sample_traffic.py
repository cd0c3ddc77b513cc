#!/usr/bin/env python3
"""Records tests/data/sample-traffic.jsonl: the published Python client talking to a Weave server.

    "$(python3 tests/support/python/venv.py py-client)" tests/support/python/record_sample_traffic.py [OUT]

Starts the reference server (start_ref_server.sh, with --log-jsonl), points the unmodified
Python client (weave 0.54.0, the py-client venv) at it and runs a small session: nested ops
with token usage, a price, feedback, queries with costs and feedback, a rename, a delete,
and the unbatched call routes sent through the client's own HTTP binding. Every exchange
(request and answer bodies) is one line of the output. tests/it/wire_format.rs and
tests/it/feedback.rs check that the Rust types read and write these bodies as the client
and server do. Ids and times differ on every run; the shape does not.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parents[1] / "data" / "sample-traffic.jsonl"
API_KEY = "k" * 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session(url: str, project: str) -> None:
    import httpx
    import weave
    from weave.trace_server_bindings.remote_http_trace_server import RemoteHTTPTraceServer

    client = weave.init(f"ref-entity/{project}")
    project_id = f"ref-entity/{project}"

    @weave.op
    def complete(prompt: str) -> dict:
        return {
            "model": "gpt-4o-mini",
            "choices": [{"message": {"role": "assistant", "content": prompt.upper()}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16},
        }

    @weave.op
    def answer(question: str) -> str:
        return complete(question)["choices"][0]["message"]["content"]

    @weave.op
    def failing(x: int) -> int:
        raise ValueError(f"no {x}")

    client.add_cost(
        llm_id="gpt-4o-mini",
        prompt_token_cost=0.00015,
        completion_token_cost=0.0006,
        effective_date=dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc),
    )
    answer("first question")
    try:
        failing(3)
    except ValueError:
        pass
    _, call = answer.call("rate me")
    call.feedback.add_reaction("👍")
    call.feedback.add_note("clear and short")
    call.feedback.add("correctness", {"score": 0.9, "reason": "matches"})
    client.flush()
    rows = list(call.feedback)
    assert len(rows) == 3, rows
    calls = list(client.get_calls(include_feedback=True, include_costs=True))
    assert len(calls) >= 5, calls
    call.set_display_name("rated answer")
    client.flush()
    assert client.get_call(call.id).display_name == "rated answer"
    assert len(client.get_calls()) >= 5

    # The unbatched routes, through the client's own binding (what it sends when batching
    # is off), and the deprecated /calls/query, which the client no longer sends, by hand.
    raw = RemoteHTTPTraceServer(url, should_batch=False)
    raw.set_auth(("api", API_KEY))
    now = dt.datetime.now(dt.timezone.utc)
    started = raw.call_start(
        {
            "start": {
                "project_id": project_id,
                "id": "0192f0c4-7c2a-7e31-9d5b-3c1f00a2b4c5",
                "trace_id": "0192f0c4-7c2a-7e31-9d5b-3c1f00a2b4c6",
                "op_name": f"weave:///{project_id}/op/direct:abc",
                "started_at": now.isoformat(),
                "attributes": {"weave": {"source": "record_sample_traffic.py"}},
                "inputs": {"n": 1, "text": "héllo"},
            }
        }
    )
    raw.call_end(
        {
            "end": {
                "project_id": project_id,
                "id": started.id,
                "ended_at": (now + dt.timedelta(milliseconds=250)).isoformat(),
                "output": {"ok": True},
                "summary": {},
            }
        }
    )
    raw.call_update({"project_id": project_id, "call_id": started.id, "display_name": "direct call"})
    assert raw.call_read({"project_id": project_id, "id": started.id}).call is not None
    assert raw.call_read({"project_id": project_id, "id": "0192f0c4-0000-7000-8000-000000000000"}).call is None
    stats = raw.calls_query_stats({"project_id": project_id})
    assert stats.count >= 6, stats
    httpx.post(
        f"{url}/calls/query",
        json={"project_id": project_id, "limit": 3, "sort_by": [{"field": "started_at", "direction": "asc"}]},
        auth=("api", API_KEY),
    ).raise_for_status()
    created = raw.feedback_create(
        {
            "project_id": project_id,
            "weave_ref": f"weave:///{project_id}/call/{started.id}",
            "feedback_type": "wandb.note.1",
            "payload": {"note": "to be purged"},
        }
    )
    raw.feedback_purge(
        {"project_id": project_id, "query": {"$expr": {"$eq": [{"$getField": "id"}, {"$literal": created.id}]}}}
    )
    failed = [c for c in calls if c.exception is not None]
    client.delete_call(failed[0])
    client.flush()


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--session":
        session(sys.argv[2], sys.argv[3])
        return
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "traffic.jsonl"
        port = free_port()
        pid = subprocess.run(
            [str(HERE / "start_ref_server.sh"), str(port), f"{tmp}/ref.db", "--log-jsonl", str(log)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        url = f"http://127.0.0.1:{port}"
        try:
            env = {
                **os.environ,
                "WF_TRACE_SERVER_URL": url,
                "WANDB_BASE_URL": url,
                "WANDB_API_KEY": API_KEY,
                "WEAVE_USE_CALLS_COMPLETE": "false",
                "WEAVE_PRINT_CALL_LINK": "false",
                "WANDB_SILENT": "true",
                "HOME": tmp,
            }
            subprocess.run([sys.executable, __file__, "--session", url, "sample"], check=True, env=env)
        finally:
            os.kill(int(pid), 15)
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in lines), encoding="utf-8")
    paths = sorted({e["path"] for e in lines})
    print(f"wrote {out}: {len(lines)} exchanges on {len(paths)} routes", file=sys.stderr)


if __name__ == "__main__":
    main()
