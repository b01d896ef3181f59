#!/usr/bin/env bash
# The project's test command: set up what the tests need, then lint, type-check and test.
# It installs the project into .venv, the Agents Playground from npm, and starts a throwaway
# PostgreSQL on loopback for the store tests (stopped again on exit).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 scripts/local_stack.py setup
if [ -z "${TEST_POSTGRES_URL:-}" ]; then
    TEST_POSTGRES_URL="$(bash scripts/postgres.sh start)"
    export TEST_POSTGRES_URL
    trap 'bash scripts/postgres.sh stop' EXIT
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
