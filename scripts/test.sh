#!/usr/bin/env bash
# Install speclearn with its test extras (torch pinned to the CPU wheel) and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -c constraints.txt -e ".[test]"
python -m pytest -q -n 2 --durations=15
