#!/usr/bin/env bash
# The GPU check in one go, on a CUDA machine: models and in-process pipeline, then both services.
# Packages the machine lacks travel as wheels in .whl/ (listed in bench/RESULTS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
if [[ -d .whl ]]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 bench/gpu_pipeline.py --seconds "${SECONDS_PER_CELL:-4}" --json "$OUT/gpu_pipeline.json" ${GPU_PIPELINE_ARGS:-}
FACEREC_DEVICE=cuda FACEREC_BATCH_WAIT_MS=2 FEATURE_EXTRACTION_WORKERS=1 FACE_DETECTION_WORKERS=4 \
  python3 bench/service.py --seconds "${SECONDS_PER_CELL:-4}" --concurrency 1,16,64 --raw-streams 4 \
  --json "$OUT/gpu_service.json"
