#!/usr/bin/env python3
"""Creates (once) and finds the pinned Python environments the tests use.

    python3 tests/support/python/venv.py NAME [NAME ...]

For each NAME, the environment described by ``tests/support/python/NAME/``
(``requirements.txt``, optional ``constraints.txt`` pinning every package, optional
``check.py`` run to prove the install works) is installed into

    ${WEAVE_RS_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/weave-rs-tests}/NAME-<hash>/

where <hash> is a short hash of those files and of the interpreter's version: changing a
pin gives a new directory, and an old one can simply be deleted. The path of the
environment's python is printed, one line per NAME. An installed environment is reused
without touching the network; a file lock (``NAME-<hash>.lock`` beside it) makes concurrent
callers (several test binaries) wait for one install instead of racing. A half-finished
install (killed, no network) is removed and done again on the next call.

Needs Python >= 3.11 (the pinned numpy requires it) with the venv module, and the package
index (PyPI or $PIP_INDEX_URL) on the first call.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILES = ("requirements.txt", "constraints.txt", "check.py")
READY = "weave-rs-ready.json"
MIN_PYTHON = (3, 11)


def cache_root() -> Path:
    if os.environ.get("WEAVE_RS_TEST_CACHE"):
        return Path(os.environ["WEAVE_RS_TEST_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(xdg) / "weave-rs-tests"


def fingerprint(spec: Path) -> str:
    h = hashlib.sha256()
    h.update(f"python {sys.version_info.major}.{sys.version_info.minor}\n".encode())
    for name in FILES:
        f = spec / name
        if f.exists():
            h.update(f"{name}\n".encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


def say(msg: str) -> None:
    print(f"venv.py: {msg}", file=sys.stderr, flush=True)


def ready(env: Path, digest: str) -> bool:
    try:
        stamp = json.loads((env / READY).read_text())
    except (OSError, ValueError):
        return False
    return stamp.get("hash") == digest and (env / "bin" / "python").exists()


def install(name: str, spec: Path, env: Path, digest: str) -> None:
    if env.exists():
        say(f"removing the unfinished environment {env}")
        shutil.rmtree(env)
    say(f"installing the '{name}' environment into {env} (first use; about a minute)")
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    python = env / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    pip += ["--requirement", str(spec / "requirements.txt")]
    if (spec / "constraints.txt").exists():
        pip += ["--constraint", str(spec / "constraints.txt")]
    subprocess.run(pip, check=True, env={**os.environ, "PIP_NO_INPUT": "1"})
    if (spec / "check.py").exists():
        subprocess.run([str(python), str(spec / "check.py")], check=True)
    stamp = {
        "name": name,
        "hash": digest,
        "python": sys.version.split()[0],
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (env / READY).write_text(json.dumps(stamp, indent=2) + "\n")
    say(f"'{name}' ready in {time.monotonic() - started:.0f} s")


def ensure(name: str) -> Path:
    spec = HERE / name
    if not (spec / "requirements.txt").is_file():
        known = sorted(p.name for p in HERE.iterdir() if (p / "requirements.txt").is_file())
        raise SystemExit(f"venv.py: no environment '{name}' (known: {', '.join(known)})")
    digest = fingerprint(spec)
    root = cache_root()
    env = root / f"{name}-{digest}"
    if ready(env, digest):
        return env / "bin" / "python"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{name}-{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready(env, digest):  # another process may have finished meanwhile
            try:
                install(name, spec, env, digest)
            except subprocess.CalledProcessError as e:
                raise SystemExit(f"venv.py: installing '{name}' failed: {e}") from None
    return env / "bin" / "python"


def main() -> None:
    names = sys.argv[1:]
    if not names or any(n.startswith("-") for n in names):
        raise SystemExit(__doc__)
    if sys.version_info < MIN_PYTHON:
        raise SystemExit(
            f"venv.py: Python {'.'.join(map(str, MIN_PYTHON))} or newer is needed, this is "
            f"{sys.version.split()[0]} ({sys.executable}); set WEAVE_RS_TEST_PYTHON to one"
        )
    for name in names:
        print(ensure(name), flush=True)


if __name__ == "__main__":
    main()
