#!/usr/bin/env bash
# The project's test command: set up what the tests need, then lint, type-check and test.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 scripts/local_stack.py setup
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
