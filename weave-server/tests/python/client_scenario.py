"""The published Python client (weave==0.54.0) logging to `weave serve`, as a user would.

Run by weave-server/tests/python_client.rs with the environment a Python user sets
(WF_TRACE_SERVER_URL, WANDB_BASE_URL, WANDB_API_KEY). It records nested ops with an
exception, LLM-style usage, attributes, a thread, feedback, a cost, a published dict and a
Dataset; queries them back with the Python client; renames and deletes a call; and prints one
JSON document of what the Python client read, for the Rust side to compare with what it reads.
Every check here is an assert: a failure exits non-zero with the traceback.
"""

from __future__ import annotations

import json
import sys

import weave

PROJECT = sys.argv[1]

client = weave.init(PROJECT)


@weave.op
def add(a: int, b: int) -> int:
    return a + b


@weave.op
def fail(x: int) -> int:
    raise ValueError(f"bad input {x}")


@weave.op
def chat(prompt: str) -> dict:
    # An LLM-style result: the client rolls `usage` up under `model` in the call's summary.
    return {
        "model": "gpt-4o-mini",
        "choices": [{"message": {"role": "assistant", "content": f"echo: {prompt}"}}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


@weave.op
def pipeline(x: int) -> dict:
    s = add(x, 10)
    try:
        fail(x)
    except ValueError:
        pass
    reply = chat(f"question {x}")
    return {"sum": s, "reply": reply["choices"][0]["message"]["content"]}


with weave.attributes({"env": "test", "run": 1}):
    first, first_call = pipeline.call(1)
assert first == {"sum": 11, "reply": "echo: question 1"}, first

with weave.thread("thread-1"):
    pipeline(2)
    pipeline(3)

client.flush()

# Feedback on the first root call: a reaction, a note, custom feedback.
root = client.get_call(first_call.id)
root.feedback.add_reaction("👍")
root.feedback.add_note("looks right")
root.feedback.add("correctness", {"value": 1, "reason": "sum ok"})

# A price for the model, so the root's costs can be computed.
client.add_cost(llm_id="gpt-4o-mini", prompt_token_cost=0.01, completion_token_cost=0.02)

# A published dict and a Dataset.
cfg_ref = weave.publish({"temperature": 0.5, "tags": ["a", "b"]}, name="config")
ds = weave.Dataset(name="golden", rows=[{"q": "one", "a": 1}, {"q": "two", "a": 2}])
ds_ref = weave.publish(ds)
client.flush()

# Read everything back with the Python client.
cfg = weave.ref(cfg_ref.uri()).get()
assert cfg == {"temperature": 0.5, "tags": ["a", "b"]}, cfg
ds_back = weave.ref(ds_ref.uri()).get()
rows = [dict(r) for r in ds_back.rows]
assert rows == [{"q": "one", "a": 1}, {"q": "two", "a": 2}], rows

roots = list(client.get_calls(filter={"trace_roots_only": True}))
assert len(roots) == 3, [c.op_name for c in roots]
adds = list(client.get_calls(filter={"op_names": [add.ref.uri()]}))
assert len(adds) == 3, len(adds)
failed = list(
    client.get_calls(
        query={"$expr": {"$eq": [{"$getField": "summary.weave.status"}, {"$literal": "error"}]}}
    )
)
assert {c.op_name.split("/")[-1].split(":")[0] for c in failed} == {"fail"}, failed
assert len(failed) == 3
children = list(root.children())
assert [c.op_name.split("/")[-1].split(":")[0] for c in children] == ["add", "fail", "chat"], children
fb = list(root.feedback)
assert sorted(f.feedback_type for f in fb) == ["correctness", "wandb.note.1", "wandb.reaction.1"], fb
costs = client.query_costs(llm_ids=["gpt-4o-mini"])
assert len(costs) == 1 and costs[0].prompt_token_cost == 0.01, costs

# Rename the first root, delete the last one.
root.set_display_name("first pipeline")
deleted = roots[-1] if roots[-1].id != root.id else roots[0]
client.delete_call(deleted)
client.flush()
roots_after = list(client.get_calls(filter={"trace_roots_only": True}))
assert len(roots_after) == 2, len(roots_after)
assert client.get_call(root.id).display_name == "first pipeline"


def call_json(c) -> dict:
    return {
        "id": c.id,
        "op_name": c.op_name,
        "display_name": c.display_name,
        "trace_id": c.trace_id,
        "parent_id": c.parent_id,
        "thread_id": c.thread_id,
        "turn_id": c.turn_id,
        "inputs": json.loads(json.dumps(dict(c.inputs), default=str)),
        "output": json.loads(json.dumps(c.output, default=str)),
        "exception": c.exception,
        "attributes": json.loads(json.dumps(dict(c.attributes), default=str)),
        "usage": json.loads(json.dumps((c.summary or {}).get("usage"), default=str)),
        "started_at": c.started_at.isoformat() if c.started_at else None,
        "ended_at": c.ended_at.isoformat() if c.ended_at else None,
    }


out = {
    "root_id": root.id,
    "deleted_id": deleted.id,
    "calls": [call_json(c) for c in client.get_calls()],
    "feedback": [
        {"id": f.id, "feedback_type": f.feedback_type, "payload": dict(f.payload)} for f in fb
    ],
    "config_ref": cfg_ref.uri(),
    "dataset_ref": ds_ref.uri(),
    "dataset_rows": rows,
}
print("SCENARIO-JSON " + json.dumps(out))
