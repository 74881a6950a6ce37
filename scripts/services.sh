#!/usr/bin/env bash
# Start or stop the embedded PostgreSQL and both services in the background.
# Usage: scripts/services.sh start|stop|status
# Settings come from the environment (see README): DATABASE_URL, FACE_DETECTION_BIND, ...
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=$ROOT/.venv/bin/python
RUN=$ROOT/var/run
LOGS=$ROOT/var/log
mkdir -p "$RUN" "$LOGS"
export FEATURE_EXTRACTION_BIND=${FEATURE_EXTRACTION_BIND:-127.0.0.1:5000}
export FACE_DETECTION_BIND=${FACE_DETECTION_BIND:-0.0.0.0:6337}
export FEATURE_EXTRACTION_URL=${FEATURE_EXTRACTION_URL:-http://${FEATURE_EXTRACTION_BIND/0.0.0.0/127.0.0.1}}

start_service() {  # name folder
  local name=$1 dir=$2
  if [[ -f "$RUN/$name.pid" ]] && kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null; then
    echo "$name already running (pid $(cat "$RUN/$name.pid"))"; return
  fi
  (cd "$ROOT/$dir" && "$ROOT/.venv/bin/gunicorn" --daemon --pid "$RUN/$name.pid" \
      --error-logfile "$LOGS/$name.log" wsgi:app)
}

wait_healthy() {  # name url
  for _ in $(seq 1 120); do
    if "$PY" - "$2" <<'PY' 2>/dev/null; then echo "$1 ready at $2"; return 0; fi
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2)
PY
    sleep 0.5
  done
  echo "$1 did not become ready; see $LOGS/$1.log" >&2; tail -5 "$LOGS/$1.log" >&2; return 1
}

stop_service() {
  local name=$1
  if [[ -f "$RUN/$name.pid" ]]; then
    kill "$(cat "$RUN/$name.pid")" 2>/dev/null && echo "stopped $name" || true
    rm -f "$RUN/$name.pid"
  fi
}

case "${1:-}" in
  start)
    if [[ -z "${DATABASE_URL:-}" ]]; then
      echo "== embedded PostgreSQL: $("$PY" -m facerec.db.embedded start)"
    fi
    "$PY" init_db.py
    start_service feature_extraction feature_extraction
    wait_healthy feature_extraction "$FEATURE_EXTRACTION_URL/health"
    start_service face_detection face_detection
    wait_healthy face_detection "http://${FACE_DETECTION_BIND/0.0.0.0/127.0.0.1}/health"
    ;;
  stop)
    stop_service face_detection
    stop_service feature_extraction
    "$PY" -m facerec.db.embedded stop
    ;;
  status)
    for name in feature_extraction face_detection; do
      if [[ -f "$RUN/$name.pid" ]] && kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null; then
        echo "$name running (pid $(cat "$RUN/$name.pid"))"; else echo "$name stopped"; fi
    done
    "$PY" -m facerec.db.embedded url || true
    ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
