#!/usr/bin/env bash
# The GPU check in one go, on a CUDA machine: models and in-process pipeline, then both services.
# Packages the machine lacks travel as wheels in .whl/ (bench/gpu_wheels.sh). onnxruntime-gpu, too
# big for one call, travels in parts that earlier calls copied to $ORT_GPU_PARTS: joined, checked
# and installed here, the ONNX models run on its CUDA provider; without it, on torch CUDA through
# onnx2torch.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/out}
ORT_GPU_WHEEL=onnxruntime_gpu-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl
ORT_GPU_SHA256=05d548956197b9d01f59b625de740e0d6be3593f874e241a12dc0362650ecdf7
mkdir -p "$OUT"
if [[ -d .whl ]]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
fi
if [[ -n ${ORT_GPU_PARTS:-} ]]; then
  cat "$ORT_GPU_PARTS"/part.* > "/tmp/$ORT_GPU_WHEEL"
  echo "$ORT_GPU_SHA256  /tmp/$ORT_GPU_WHEEL" | sha256sum --check --quiet
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site-ort "/tmp/$ORT_GPU_WHEEL"
fi
for site in /tmp/site /tmp/site-ort; do
  [[ -d $site ]] && export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
done
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c 'import torch, onnxruntime as ort; print("onnxruntime", ort.__version__, ort.get_available_providers())'
python3 bench/gpu_pipeline.py --seconds "${SECONDS_PER_CELL:-4}" --json "$OUT/gpu_pipeline.json" ${GPU_PIPELINE_ARGS:-}
[[ ${SKIP_SERVICES:-0} == 1 ]] && exit 0
FACEREC_DEVICE=cuda FACEREC_BATCH_WAIT_MS=2 FEATURE_EXTRACTION_WORKERS=1 FACE_DETECTION_WORKERS=4 \
  python3 bench/service.py --seconds "${SECONDS_PER_CELL:-4}" --concurrency 1,16,64 --raw-streams 4 \
  --json "$OUT/gpu_service.json"
