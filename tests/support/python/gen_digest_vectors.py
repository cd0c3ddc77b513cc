#!/usr/bin/env python3
"""Writes tests/data/digest-vectors.json: digests and refs as the weave package computes them.

    "$(python3 tests/support/python/venv.py ref-server)" tests/support/python/gen_digest_vectors.py

tests/it/digests.rs holds the Rust functions (weave::digest, weave::refs) to these values.
Every value comes from weave's own code (weave.shared.digest, the module its client and its
server share, and weave.trace.refs), in the pinned ref-server venv. The cases are fixed
edge cases plus pseudo-random ones from a fixed seed, so running this again rewrites the
same file; pass another path to write elsewhere.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

import weave
from weave.shared import digest as wd
from weave.trace import refs

OUT = Path(__file__).resolve().parents[2] / "data" / "digest-vectors.json"

# Values whose canonical JSON is easy to get wrong: key order, float spelling (repr,
# exponents, -0.0), non-ASCII and control characters (json.dumps escapes them as \uXXXX),
# nesting, and a typed object as the client publishes it.
FIXED_OBJECTS: list[Any] = [
    {"x": 1, "y": 2},
    {"y": 2, "x": 1},
    {"model": "gpt-4o-mini", "temperature": 0.2, "top_p": 1.0, "max_tokens": 512},
    [3, 2, 1],
    [],
    {},
    "",
    "weave",
    0,
    -7,
    2**53 + 1,
    0.5,
    2.5e-07,
    1e16,
    1e22,
    100.0,
    0.30000000000000004,
    -0.0,
    1.7976931348623157e308,
    5e-324,
    False,
    None,
    {"greeting": "grüß dich — ça va? 你好 🎉"},
    {"escapes": 'tab\there "q" back\\slash\r\n', "ctrl": "\u0000\u0007\u001b\u007f"},
    {"surrogate pair": "𝄞", "bmp": "\u2028\u2029"},
    {"outer": {"list": [{"b": [None, True]}, 1.25, "s"], "a": {}}},
    {
        "_type": "SystemPrompt",
        "_class_name": "SystemPrompt",
        "_bases": ["Object", "BaseModel"],
        "text": "You are terse.",
    },
    {"rows": list(range(64))},
]

ALPHABET = "abxyz_é"


def random_key(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 6)))


def random_value(rng: random.Random) -> Any:
    kind = rng.randrange(6)
    if kind == 0:
        return rng.randint(-(10**12), 10**12)
    if kind == 1:
        return rng.random() * 10 ** rng.randint(-9, 9)
    if kind == 2:
        return f"v{rng.randint(0, 999)}"
    if kind == 3:
        return None
    if kind == 4:
        return [rng.random() for _ in range(rng.randint(0, 3))]
    return {"n": rng.randint(0, 9), "ok": rng.random() < 0.5}


def random_objects(rng: random.Random, n: int) -> list[dict[str, Any]]:
    return [{random_key(rng): random_value(rng) for _ in range(rng.randint(1, 6))} for _ in range(n)]


def random_rows(rng: random.Random, n: int) -> list[dict[str, Any]]:
    return [
        {"question": f"{i} * {rng.randint(0, 9)}", "answer": rng.randint(0, 81), "weight": rng.random()}
        for i in range(n)
    ]


FILES = ["", "import weave\n\n@weave.op\ndef add(a, b):\n    return a + b\n", "naïve café ✓\n", "\x00\x01binary-ish\xff"]

REFS = [
    "weave:///acme/chat-app/object/system_prompt:6t5h1MkmsSCpPOLeuqdqFgUMkpkUzWcHVb8xBjKUrfQ",
    "weave:///acme/chat-app/op/generate.answer:Vb8xBjKUrfQ",
    "weave:///ent/proj/object/dataset:abc/attr/rows/id/1f2e3d",
    "weave:///ent/proj/object/cfg:v7/key/with%20space%2Fslash/index/0",
    "weave:///ent/proj/table/" + "ab" * 32,
    "weave:///ent/proj/call/0192f0c4-7c2a-7e31-9d5b-3c1f00a2b4c5",
    "weave:///ent/proj/call/0192f0c4-7c2a-7e31-9d5b-3c1f00a2b4c5/key/inputs/key/prompt",
]


def ref_case(uri: str) -> dict[str, str]:
    parsed = refs.Ref.parse_uri(uri)
    assert parsed.uri() == uri, f"weave does not write {uri} back as it was: {parsed.uri()}"
    return {"kind": type(parsed).__name__, "uri": uri}


def render(doc: dict[str, Any]) -> str:
    """JSON with one case per line, so a change shows as the cases it touches."""
    parts = []
    for key, value in doc.items():
        if isinstance(value, list):
            cases = ",\n".join("  " + json.dumps(c, ensure_ascii=False) for c in value)
            parts.append(f" {json.dumps(key)}: [\n{cases}\n ]")
        else:
            parts.append(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    text = "{\n" + ",\n".join(parts) + "\n}\n"
    assert json.loads(text) == doc
    return text


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    rng = random.Random(20240601)
    objects = FIXED_OBJECTS + random_objects(rng, 12)
    tables = []
    for n in (1, 3, 6):
        rows = random_rows(rng, n)
        row_digests = [wd.compute_row_digest(r) for r in rows]
        tables.append({"rows": rows, "row_digests": row_digests, "table_digest": wd.compute_table_digest(row_digests)})
    doc = {
        "generated_by": f"tests/support/python/gen_digest_vectors.py with weave {weave.__version__}",
        "objects": [{"val": v, "digest": wd.compute_object_digest(v)} for v in objects],
        "tables": tables,
        "files": [{"content_utf8": f, "digest": wd.compute_file_digest(f.encode())} for f in FILES],
        "refs": [ref_case(u) for u in REFS],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(doc), encoding="utf-8")
    print(f"wrote {out}: {len(doc['objects'])} objects, {len(tables)} tables, {len(FILES)} files, {len(REFS)} refs")


if __name__ == "__main__":
    main()
