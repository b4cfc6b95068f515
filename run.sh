#!/usr/bin/env bash
# Sets up a virtual environment in .venv (once) and runs one job in it.
#   bash run.sh demo   -> lip-syncs the built-in example photo to a spoken sentence: output/astronaut_demo.mp4
#   bash run.sh test   -> runs the test suite (pytest)
#   bash run.sh setup  -> only installs
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ requirements.txt -nt "$stamp" ] || [ requirements-dev.txt -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  touch "$stamp"
fi
job=${1:-demo}
shift || true
case "$job" in
  setup) ;;
  demo) .venv/bin/python -m lipsync.demo "$@" ;;
  test) .venv/bin/python -m pytest -q tests "$@" ;;
  *) echo "usage: bash run.sh [setup|demo|test]" >&2; exit 2 ;;
esac
