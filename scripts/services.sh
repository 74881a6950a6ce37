#!/usr/bin/env bash
# Start or stop the embedded PostgreSQL and both services in the background.
# Usage: scripts/services.sh start|stop|restart|status
# restart: the services stop (each finishing its requests) and start again with the environment of
# now; the embedded PostgreSQL keeps running.
# Settings come from the environment (see README): DATABASE_URL, FACE_DETECTION_BIND, FACEREC_STATE_DIR, ...
# Pid files and logs live in the state folder (FACEREC_STATE_DIR, var/ by default): give stop and
# status the same FACEREC_STATE_DIR as start.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd -P)  # as /proc/PID/cwd names it
PY=$ROOT/.venv/bin/python
export FACEREC_STATE_DIR
FACEREC_STATE_DIR=$(realpath -m "${FACEREC_STATE_DIR:-$ROOT/var}")  # each service runs from its own folder
RUN=$FACEREC_STATE_DIR/run
LOGS=$FACEREC_STATE_DIR/log
mkdir -p "$RUN" "$LOGS"
export FEATURE_EXTRACTION_BIND=${FEATURE_EXTRACTION_BIND:-127.0.0.1:5000}
export FACE_DETECTION_BIND=${FACE_DETECTION_BIND:-0.0.0.0:6337}
export FEATURE_EXTRACTION_URL=${FEATURE_EXTRACTION_URL:-http://${FEATURE_EXTRACTION_BIND/0.0.0.0/127.0.0.1}}

running() {  # name: the pid of this checkout's gunicorn for the service, if its pid file names one
  local name=$1 pid
  [[ -f "$RUN/$name.pid" ]] || return 1
  pid=$(cat "$RUN/$name.pid")
  # A pid file outlives a reboot or a crash, and its pid may be another program's by now.
  [[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" == "$ROOT/$name" ]] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q gunicorn || return 1
  echo "$pid"
}

start_service() {  # name
  local name=$1 pid
  if pid=$(running "$name"); then
    echo "$name already running (pid $pid)"; return
  fi
  rm -f "$RUN/$name.pid"
  # --capture-output: the app's own log lines (JSON, errors, warnings) go to the log file too.
  (cd "$ROOT/$name" && "$ROOT/.venv/bin/gunicorn" --daemon --pid "$RUN/$name.pid" \
      --error-logfile "$LOGS/$name.log" --capture-output wsgi:app)
}

wait_healthy() {  # name bind url: until this service (not another program on its port) answers
  local name=$1 bind=$2 url=$3 pid
  for _ in $(seq 1 120); do
    if pid=$(running "$name"); then
      if "$PY" - "$url" "$pid" "$bind" <<'PY' 2>/dev/null; then echo "$name ready at $url"; return 0; fi
import json, os, sys, urllib.request
url, pid, bind = sys.argv[1:]
# While gunicorn retries a port in use, its master runs and another program answers there: the
# answer counts only once this gunicorn holds a socket listening on the port it binds.
port = int(bind.rsplit(":", 1)[1])
listening = set()
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    with open(table) as lines:
        for line in list(lines)[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                listening.add(f"socket:[{fields[9]}]")
held = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
if not listening & held:
    sys.exit(1)
answer = json.load(urllib.request.urlopen(url, timeout=2))
sys.exit(0 if {"status", "version"} <= set(answer) else 1)
PY
    elif [[ -f "$RUN/$name.pid" ]]; then
      break  # it wrote its pid file and exited: a port in use, a setting refused, a model missing
    fi
    sleep 0.5
  done
  echo "$name did not start; the end of $LOGS/$name.log:" >&2; tail -15 "$LOGS/$name.log" >&2; return 1
}

stop_service() {  # name: TERM, then wait while gunicorn lets requests finish (graceful_timeout, 30 s)
  local name=$1 pid
  if pid=$(running "$name"); then
    kill "$pid"
    for _ in $(seq 1 70); do
      [[ -d "/proc/$pid" ]] || break
      sleep 0.5
    done
    if [[ -d "/proc/$pid" ]]; then
      echo "$name (pid $pid) still running after 35 s" >&2; return 1
    fi
    echo "stopped $name"
  fi
  rm -f "$RUN/$name.pid"
}

start_all() {
  if [[ -z "${DATABASE_URL:-}" ]]; then
    url=$("$PY" -m facerec.db.embedded start)
    echo "== embedded PostgreSQL: $url"
  fi
  "$PY" init_db.py
  start_service feature_extraction
  wait_healthy feature_extraction "$FEATURE_EXTRACTION_BIND" "$FEATURE_EXTRACTION_URL/health"
  start_service face_detection
  wait_healthy face_detection "$FACE_DETECTION_BIND" "http://${FACE_DETECTION_BIND/0.0.0.0/127.0.0.1}/health"
}

stop_services() {
  stop_service face_detection
  stop_service feature_extraction
}

case "${1:-}" in
  start) start_all ;;
  stop)
    stop_services
    "$PY" -m facerec.db.embedded stop
    ;;
  restart)
    stop_services
    start_all
    ;;
  status)  # exit 0 when both services run, 3 otherwise (as LSB init scripts say "not running")
    stopped=0
    for name in feature_extraction face_detection; do
      if pid=$(running "$name"); then echo "$name running (pid $pid)"; else echo "$name stopped"; stopped=3; fi
    done
    "$PY" -m facerec.db.embedded url || true
    exit "$stopped"
    ;;
  *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
