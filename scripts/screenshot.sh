#!/usr/bin/env bash
# Seen in a real browser: start the local stack, type a question into Alice's playground page in
# headless Chromium, wait for Bob's greeting, save a screenshot, stop the stack.
#   bash scripts/screenshot.sh                 # -> .run/handoff-in-playground.png (nothing tracked changes)
#   bash scripts/screenshot.sh docs/handoff-in-playground.png   # refresh the README's picture
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
    echo "[screenshot] installing Debian's chromium"
    sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null
fi
if [ ! -d .run/browser/node_modules/playwright-core ]; then
    echo "[screenshot] installing playwright-core into .run/browser"
    mkdir -p .run/browser
    npm install --no-audit --no-fund --loglevel=error --prefix .run/browser playwright-core@1.64.1
fi
python3 scripts/local_stack.py setup
export SCREENSHOT_OUT="${1:-.run/handoff-in-playground.png}"
exec .venv/bin/python - <<'PY'
import os
import subprocess
from pathlib import Path

from scripts.local_stack import ROOT, StackPlan, running_stack

out = ROOT / os.environ["SCREENSHOT_OUT"]
out.parent.mkdir(parents=True, exist_ok=True)
with running_stack(StackPlan(bots=StackPlan.default().bots, state_dir=ROOT / ".run" / "screenshot-data")) as stack:
    alice = stack.plan.bots[0]
    subprocess.run(["node", str(ROOT / "scripts" / "screenshot.mjs"), alice.playground_url, str(out)], check=True)
print(f"[screenshot] saved {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
PY
