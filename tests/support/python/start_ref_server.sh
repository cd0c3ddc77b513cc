#!/usr/bin/env bash
# Starts the reference Weave trace server (ref_server.py) in the background on loopback and
# waits until it answers; prints its PID (stop it with `kill PID`).
#   usage: tests/support/python/start_ref_server.sh PORT DB [ref_server.py flags...]
# The ref-server venv is installed on first use (venv.py; cache in $WEAVE_RS_TEST_CACHE,
# default ~/.cache/weave-rs-tests). The server's log goes to DB.log.
# Env: WEAVE_RS_TEST_PYTHON, the python3 that runs venv.py (default python3).
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 PORT DB [ref_server.py flags...]" >&2
  exit 2
fi
dir=$(cd "$(dirname "$0")" && pwd)
port=$1 db=$2
shift 2
python=$("${WEAVE_RS_TEST_PYTHON:-python3}" "$dir/venv.py" ref-server)
log="$db.log"
"$python" "$dir/ref_server.py" --port "$port" --db "$db" "$@" >"$log" 2>&1 &
pid=$!
for _ in $(seq 600); do
  if "$python" -c 'import sys, urllib.request; urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/health", timeout=1)' "$port" 2>/dev/null; then
    echo "$pid"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "the reference server exited; its log ($log):" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.1
done
echo "the reference server did not answer on port $port; its log: $log" >&2
kill "$pid"
exit 1
