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
# install(requirements file, stamp): once, and again whenever the file changes
install() {
  if [ ! -f "$2" ] || [ requirements.txt -nt "$2" ] || [ "$1" -nt "$2" ]; then
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
else
  install requirements.txt .venv/.installed
fi
shift || true
case "$job" in
  setup) ;;
  demo) .venv/bin/python -m lipsync.demo "$@" ;;
  test) .venv/bin/python -m pytest -q tests "$@" ;;
  *) echo "usage: bash run.sh [setup|demo|test]" >&2; exit 2 ;;
esac
