#!/usr/bin/env bash
# bench/against.sh REV [ROUNDS]: the benchmark of this checkout and of REV, alternately, ROUNDS times.
#
# This machine's speed drifts by a fifth and more within an hour, so only runs made back to back
# compare; this makes them back to back, and swaps which goes first every round. REV runs from a
# temporary git worktree with this checkout's virtualenv, so it must run on today's dependencies
# (a revision that imports a package this one dropped fails at start-up, and says so).
set -euo pipefail
rev=${1:?usage: bench/against.sh REV [ROUNDS]}
rounds=${2:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
python="$root/.venv/bin/python"
tree=$(mktemp -d "${TMPDIR:-/tmp}/handoff-against.XXXXXX")
cleanup() {
    git -C "$root" worktree remove --force "$tree" >/dev/null 2>&1 || rm -rf "$tree"
    git -C "$root" worktree prune
}
trap cleanup EXIT
git -C "$root" worktree add --detach -q "$tree" "$rev"
# The virtualenv's editable install maps bot.prompt_files to this checkout's prompts/; REV reads its own.
if [[ ! -e "$tree/bot/prompt_files" ]]; then
    ln -s "$tree/prompts" "$tree/bot/prompt_files"
    touch "$tree/prompts/__init__.py"
fi
figures='floor\)|concurrency 1 |first notice|handoffs/s|CPU per'
measure() { # label dir round
    local once=()
    if grep -q -- '--no-profile' "$2/bench/benchmark.py"; then once=(--runs 1 --no-profile); fi
    local out
    if ! out=$(cd "$2" && "$python" -m bench.benchmark --sequential 40 --concurrent 320 --floor 100 \
        ${once[@]+"${once[@]}"} 2>&1); then
        echo "$1, round $3: the benchmark failed:" >&2
        tail -3 <<<"$out" >&2
        return 1
    fi
    grep -E "$figures" <<<"$out" | sed "s|^|$1, round $3: |"
}
for round in $(seq "$rounds"); do
    if ((round % 2)); then
        measure "$rev" "$tree" "$round"
        measure "this checkout" "$root" "$round"
    else
        measure "this checkout" "$root" "$round"
        measure "$rev" "$tree" "$round"
    fi
done
