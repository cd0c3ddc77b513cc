"""Starts fresh reference servers quickly, for test suites that want one per test.

Importing the reference server (weave, pydantic, FastAPI) costs about 2.5 s of CPU; this
process pays it once, then forks one server per request. Each child is the unmodified
``ref_server.main`` on its own port and its own database, exactly as
``python ref_server.py --port PORT --db DB`` (or ``start_ref_server.sh``) would run it.

Usage (weave-testkit/src/ref_server.rs): ``PYTHON ref_forkserver.py PATH/TO/ref_server.py``
with the python of the ``ref-server`` venv.

Protocol, one line per request on stdin: ``PORT DB LOG``; the answer on stdout is the
child's pid. A line ``kill PID`` stops that child. When stdin closes (the test process
exited), every child is killed and this process exits.
"""

import ctypes
import importlib.util
import os
import signal
import sys


def main() -> None:
    script = sys.argv[1]
    spec = importlib.util.spec_from_file_location("ref_server", script)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    # Registered first, as an import would: dataclasses and type hints look the module up.
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    children: set[int] = set()
    for line in sys.stdin:
        parts = line.split()
        if len(parts) == 2 and parts[0] == "kill":
            pid = int(parts[1])
            if pid in children:
                children.discard(pid)
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            continue
        port, db, log = parts
        pid = os.fork()
        if pid == 0:
            # Die with the fork server, however it ends.
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            try:
                mod.main(["--port", port, "--db", db])
            finally:
                os._exit(0)
        children.add(pid)
        print(pid, flush=True)
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except OSError:
            pass


if __name__ == "__main__":
    main()
