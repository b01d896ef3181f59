#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback for the store tests: `start` prints the URL to export as
# TEST_POSTGRES_URL, `stop` removes it. Installs Debian's postgresql when it is missing (needs root).
set -euo pipefail
PORT="${TEST_POSTGRES_PORT:-55432}"
DIR="${TMPDIR:-/tmp}/teams-handoff-pg-$PORT"

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-start}" in
start)
    if [ -z "$(pg_bin)" ]; then
        echo "[postgres] installing Debian's postgresql" >&2
        sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
        $sudo_cmd apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq postgresql >/dev/null
    fi
    BIN="$(pg_bin)"
    if ! "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
        rm -rf "$DIR"
        mkdir -p "$DIR"
        [ "$(id -u)" -eq 0 ] && chown postgres "$DIR"
        as_owner "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust >/dev/null
        as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
            -o "-p $PORT -c listen_addresses=127.0.0.1 -k $DIR -c fsync=off" start >/dev/null
    fi
    echo "postgresql+asyncpg://postgres@127.0.0.1:$PORT/postgres"
    ;;
stop)
    BIN="$(pg_bin)"
    if [ -n "$BIN" ] && [ -d "$DIR/data" ]; then
        as_owner "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null || true
    fi
    rm -rf "$DIR"
    ;;
esac
