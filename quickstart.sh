#!/usr/bin/env bash
# One command on a fresh clone: install, start the embedded database and both services,
# enrol Yao Ming from one photo and recognise him among ~20 players in another.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
scripts/services.sh start
detection=${FACE_DETECTION_BIND:-0.0.0.0:6337}
.venv/bin/python scripts/demo.py --url "http://${detection/0.0.0.0/127.0.0.1}"
echo
echo "Both services are running: face_detection on $detection, feature_extraction on ${FEATURE_EXTRACTION_BIND:-127.0.0.1:5000}."
echo "Stop them (and the embedded database) with: scripts/services.sh stop"
