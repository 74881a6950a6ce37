#!/usr/bin/env bash
# One command on a fresh clone: install, start the embedded database and both services,
# enrol Yao Ming from one photo and recognise him among ~20 players in another.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
scripts/services.sh start
.venv/bin/python scripts/demo.py
echo
echo "Both services are running: face_detection on :6337, feature_extraction on 127.0.0.1:5000."
echo "Stop them (and the embedded database) with: scripts/services.sh stop"
