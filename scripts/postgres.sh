#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback for the store tests.
#   DIR=$(mktemp -d); URL=$(bash scripts/postgres.sh start "$DIR")   # prints the URL for TEST_POSTGRES_URL
#   bash scripts/postgres.sh stop "$DIR"                            # stops it and removes DIR
# Each server lives in its own folder on a port chosen when it starts, so two test runs at once
# do not meet. Debian's postgresql is installed when missing: that needs root (or sudo), and the
# script says so before it does it.
set -euo pipefail
DIR="${2:?usage: postgres.sh start|stop DIR}"

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$1" in
start)
    if [ -z "$(pg_bin)" ]; then
        sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
        echo "[postgres] the store tests need a PostgreSQL server; installing Debian's postgresql${sudo_cmd:+ with sudo}" >&2
        $sudo_cmd apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq postgresql >/dev/null
    fi
    BIN="$(pg_bin)"
    PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    mkdir -p "$DIR"
    [ "$(id -u)" -eq 0 ] && chown postgres "$DIR"
    as_owner "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust >/dev/null
    as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
        -o "-p $PORT -c listen_addresses=127.0.0.1 -k $DIR -c fsync=off" start >/dev/null
    echo "$PORT" > "$DIR/port"
    echo "postgresql+asyncpg://postgres@127.0.0.1:$PORT/postgres"
    ;;
stop)
    BIN="$(pg_bin)"
    if [ -n "$BIN" ] && [ -d "$DIR/data" ]; then
        as_owner "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null || true
    fi
    rm -rf "$DIR"
    ;;
*)
    echo "usage: postgres.sh start|stop DIR" >&2
    exit 2
    ;;
esac
