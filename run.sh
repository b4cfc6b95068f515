#!/usr/bin/env bash
# Sets up a virtual environment in .venv (once) and runs one job in it.
#   bash run.sh demo   -> lip-syncs the built-in example photo to a spoken sentence: output/astronaut_demo.mp4
#   bash run.sh test   -> runs the test suite (pytest)
#   bash run.sh ui     -> serves the web page and HTTP API on http://127.0.0.1:7860 (options: python app.py --help)
#   bash run.sh setup  -> only installs
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# install(requirements file, stamp): once, and again whenever a requirements file changes
install() {
  local stale=0 f
  for f in requirements*.txt; do [ "$f" -nt "$2" ] && stale=1; done
  if [ ! -f "$2" ] || [ "$stale" = 1 ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$1"
    touch "$2"
  fi
}
job=${1:-demo}
if [ "$job" = test ]; then
  # the tests add pytest, PyTorch (CPU) for the Wav2Lip path, and a published copy of Wav2Lip's
  # model code as the parity reference (its own dependencies are not needed for that)
  install requirements-dev.txt .venv/.installed-dev
  if [ ! -f .venv/.installed-reference ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps "wyn-wav2lip==0.2.3"
    touch .venv/.installed-reference
  fi
elif [ "$job" = ui ]; then
  install requirements-ui.txt .venv/.installed-ui
else
  install requirements.txt .venv/.installed
fi
shift || true
case "$job" in
  setup) ;;
  demo) .venv/bin/python -m lipsync.demo "$@" ;;
  test) .venv/bin/python -m pytest -q tests "$@" ;;
  ui) .venv/bin/python app.py "$@" ;;
  *) echo "usage: bash run.sh [setup|demo|test|ui]" >&2; exit 2 ;;
esac
