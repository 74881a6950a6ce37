#!/usr/bin/env bash
# The whole test suite, against a real PostgreSQL, real models and both services over HTTP.
# Extra arguments go to pytest, e.g. ./run_tests.sh -k recognition
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh --dev
exec .venv/bin/python -m pytest "$@"
