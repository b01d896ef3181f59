#!/usr/bin/env bash
# bench/against.sh REV [ROUNDS]: the benchmark of this checkout and of REV, alternately, ROUNDS times.
#
# This machine's speed drifts by a fifth and more within an hour, so only runs made back to back
# compare; this makes them back to back. REV runs from a temporary git worktree with this
# checkout's virtualenv.
set -euo pipefail
rev=${1:?usage: bench/against.sh REV [ROUNDS]}
rounds=${2:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
python="$root/.venv/bin/python"
tree=$(mktemp -d "${TMPDIR:-/tmp}/handoff-against.XXXXXX")
trap 'git -C "$root" worktree remove --force "$tree" >/dev/null 2>&1 || rm -rf "$tree"' EXIT
git -C "$root" worktree add --detach -q "$tree" "$rev"
# The virtualenv's editable install maps bot.prompt_files to this checkout's prompts/; REV reads its own.
ln -s "$tree/prompts" "$tree/bot/prompt_files"
touch "$tree/prompts/__init__.py"
figures='floor\)|concurrency 1 |first notice|handoffs/s|CPU per'
for round in $(seq "$rounds"); do
    for side in "$rev=$tree" "this checkout=$root"; do
        label=${side%%=*}
        dir=${side#*=}
        once=()
        if grep -q -- '--no-profile' "$dir/bench/benchmark.py"; then once=(--runs 1 --no-profile); fi
        (cd "$dir" && "$python" -m bench.benchmark --sequential 40 --concurrent 320 --floor 100 "${once[@]}") |
            grep -E "$figures" | sed "s|^|$label, round $round: |"
    done
done
