#!/usr/bin/env bash
# Create .venv and install everything pinned; does nothing when the requirements did not change.
# Usage: scripts/setup.sh [--dev]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
files=(requirements.txt requirements_nodeps.txt pyproject.toml)
[[ "${1:-}" == "--dev" ]] && files+=(requirements_dev.txt)
stamp=".venv/.installed-$(cat "${files[@]}" | sha256sum | cut -c1-16)"
if [[ -f "$stamp" ]]; then
  exit 0
fi
if [[ ! -x .venv/bin/python ]]; then
  echo "== creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@" 2> >(grep -v "^WARNING: Location" >&2); }
echo "== installing requirements (torch and torchvision are large: a few minutes the first time)"
pip install -r requirements.txt
pip install --no-deps -r requirements_nodeps.txt
[[ "${1:-}" == "--dev" ]] && pip install -r requirements_dev.txt
pip install --no-deps -e .
rm -f .venv/.installed-*
touch "$stamp"
echo "== .venv ready"
