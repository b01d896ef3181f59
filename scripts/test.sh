#!/usr/bin/env bash
# The project's test command: set up what the tests need, then lint, type-check and test.
# It installs the project into .venv, the Agents Playground from npm, and starts a throwaway
# PostgreSQL on loopback for the store tests, in its own folder on a free port (stopped and removed
# on exit). Set TEST_POSTGRES_URL to use a server of your own instead.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 scripts/local_stack.py setup
if [ -z "${TEST_POSTGRES_URL:-}" ]; then
    PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/teams-handoff-pg.XXXXXX")"
    trap 'bash scripts/postgres.sh stop "$PG_DIR"' EXIT
    TEST_POSTGRES_URL="$(bash scripts/postgres.sh start "$PG_DIR")"
    export TEST_POSTGRES_URL
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
