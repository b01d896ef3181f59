#!/usr/bin/env python3
"""Run the whole thing locally: Alice and Bob (offline model) and an Agents Playground for each.

    python3 scripts/local_stack.py run     # set up (venv, install, playground), start, wait for Ctrl-C
    python3 scripts/local_stack.py stop    # stop what a running `run` started, from another terminal

Only the standard library is used here, because this runs before the virtual environment exists.
The two playgrounds share one user and one personal chat id, and the user's id equals their
aadObjectId, so when Bob opens a 1:1 with that aadObjectId (exactly as in Teams) the playground
returns the user's chat: Bob's greeting shows up where the user is talking to Alice, and the same
chat id in Bob's own playground continues the conversation with Bob.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``scripts`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripts.bot_process import ROOT, bot_launch, listening_socket

RUN_DIR = ROOT / ".run"
VENV = ROOT / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
PLAYGROUND_PACKAGE = "@microsoft/m365agentsplayground"
PLAYGROUND_VERSION = "0.2.28"
# The official Teams app manifest JSON schemas, for validating generated packages offline.
MANIFEST_SCHEMA_PACKAGE = "@microsoft/app-manifest"
MANIFEST_SCHEMA_VERSION = "1.1.2"
PLAYGROUND_DIR = RUN_DIR / "playground"
PLAYGROUND_CLI = PLAYGROUND_DIR / "node_modules" / "@microsoft" / "m365agentsplayground" / "cli.js"
STATE_FILE = RUN_DIR / "stack.json"

LOCAL_USER = {
    "id": "aad-dana-local",
    "name": "Dana Smith",
    "userPrincipleName": "dana@contoso.test",
    "aadObjectId": "aad-dana-local",
    "givenName": "Dana",
    "surname": "Smith",
    "email": "dana@contoso.test",
}
LOCAL_TENANT = "tenant-contoso-local"
LOCAL_CHAT_ID = "a:dana-personal-chat"


@dataclass(frozen=True)
class BotPlan:
    name: str
    env_file: Path
    port: int
    playground_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def playground_url(self) -> str:
        return f"http://127.0.0.1:{self.playground_port}"


@dataclass(frozen=True)
class StackPlan:
    bots: tuple[BotPlan, ...]
    state_dir: Path = ROOT / "data"
    log_dir: Path = RUN_DIR / "logs"
    with_playgrounds: bool = True
    state_file: Path | None = None

    @classmethod
    def default(cls, ports: tuple[int, int, int, int] = (3978, 3979, 56150, 56151)) -> StackPlan:
        alice, bob, alice_playground, bob_playground = ports
        return cls(
            bots=(
                BotPlan("Alice", ROOT / "env" / "alice.local.env", alice, alice_playground),
                BotPlan("Bob", ROOT / "env" / "bob.local.env", bob, bob_playground),
            )
        )

    def ports(self) -> list[int]:
        ports = [bot.port for bot in self.bots]
        if self.with_playgrounds:
            ports += [bot.playground_port for bot in self.bots]
        return ports


class StackError(Exception):
    pass


def say(message: str) -> None:
    print(f"[local] {message}", flush=True)


# Set-up ------------------------------------------------------------------------------------------


def ensure_python_environment() -> None:
    if not VENV_PYTHON.exists():
        say("creating the virtual environment in .venv")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    stamp = VENV / ".installed"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted:
        return
    log = RUN_DIR / "logs" / "setup.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    say(f"installing the project and its dev tools into .venv (first run only; log: {log.relative_to(ROOT)})")
    with log.open("ab") as sink:
        for step in (["install", "--upgrade", "pip"], ["install", "-e", f"{ROOT}[dev]"]):
            result = subprocess.run(
                [str(VENV_PYTHON), "-m", "pip", *step], stdout=sink, stderr=subprocess.STDOUT
            )
            if result.returncode != 0:
                raise StackError(f"pip {' '.join(step)} failed; see {log}:\n{tail(log)}")
    stamp.write_text(wanted)


def _installed_version(package: str) -> str | None:
    manifest = PLAYGROUND_DIR / "node_modules" / package / "package.json"
    return json.loads(manifest.read_text()).get("version") if manifest.exists() else None


def ensure_playground() -> None:
    """The Agents Playground and the Teams manifest schemas, pinned, into .run/playground."""
    if (
        _installed_version(PLAYGROUND_PACKAGE) == PLAYGROUND_VERSION
        and _installed_version(MANIFEST_SCHEMA_PACKAGE) == MANIFEST_SCHEMA_VERSION
    ):
        return
    say(f"installing the Agents Playground ({PLAYGROUND_PACKAGE}@{PLAYGROUND_VERSION}) into .run/playground")
    PLAYGROUND_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "npm",
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
            str(PLAYGROUND_DIR),
            f"{PLAYGROUND_PACKAGE}@{PLAYGROUND_VERSION}",
            f"{MANIFEST_SCHEMA_PACKAGE}@{MANIFEST_SCHEMA_VERSION}",
        ],
        check=True,
    )


def playground_config(bot: BotPlan) -> dict[str, object]:
    colleagues = [
        {
            "id": f"user-{n}",
            "name": f"Colleague {n}",
            "userPrincipleName": f"colleague{n}@contoso.test",
            "aadObjectId": f"aad-colleague-{n}",
            "givenName": "Colleague",
            "surname": str(n),
            "email": f"colleague{n}@contoso.test",
        }
        for n in range(1, 6)
    ]
    return {
        "version": "0.1.1",
        "tenantId": LOCAL_TENANT,
        "bot": {"id": f"28:{bot.name.lower()}-local", "name": bot.name},
        "currentUser": LOCAL_USER,
        "users": colleagues,
        "personalChat": {"id": LOCAL_CHAT_ID},
        "groupChat": {"id": "19:local-group-chat", "name": "Local group chat"},
        "team": {
            "id": "19:local-team",
            "name": "Local team",
            "aadGroupId": "aad-group-local",
            "channels": [],
        },
    }


# Running -----------------------------------------------------------------------------------------


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@dataclass
class RunningProcess:
    label: str
    process: subprocess.Popen[bytes]
    log: Path
    health_url: str


@dataclass
class LocalStack:
    plan: StackPlan
    processes: list[RunningProcess] = field(default_factory=list)
    _recorded: bool = False

    def start(self) -> None:
        busy = [port for port in self.plan.ports() if port_in_use(port)]
        if busy:
            raise StackError(
                f"port(s) {', '.join(map(str, busy))} already in use: is the local stack already running? "
                "Stop it with `make stop` (or free the ports) and try again."
            )
        self.plan.log_dir.mkdir(parents=True, exist_ok=True)
        self.plan.state_dir.mkdir(parents=True, exist_ok=True)
        peers = {
            bot.name: ",".join(other.url for other in self.plan.bots if other is not bot)
            for bot in self.plan.bots
        }
        for bot in self.plan.bots:
            try:
                sock = listening_socket(bot.port)
            except OSError:
                raise StackError(
                    f"port {bot.port} already in use: is the local stack already running? "
                    "Stop it with `make stop` (or free the port) and try again."
                ) from None
            launch = bot_launch(
                "--env-file",
                str(bot.env_file),
                sock=sock,
                python=VENV_PYTHON,
                inherit=dict(os.environ),
                settings={
                    "PEER_URLS": peers[bot.name],
                    "STATE_URL": f"sqlite+aiosqlite:///{self.plan.state_dir / bot.name.lower()}.local.db",
                },
            )
            with sock:
                self._spawn(
                    f"{bot.name} bot",
                    launch.argv,
                    env=launch.env,
                    cwd=ROOT,
                    health_url=f"{bot.url}/healthz",
                    pass_fds=launch.pass_fds,
                )
        if self.plan.with_playgrounds:
            for bot in self.plan.bots:
                folder = self.plan.log_dir.parent / f"playground-{bot.name.lower()}"
                folder.mkdir(parents=True, exist_ok=True)
                (folder / ".m365agentsplayground.yml").write_text(
                    json.dumps(playground_config(bot), indent=2)
                )
                log = self.plan.log_dir / f"playground-{bot.name.lower()}.log"
                env = {
                    **os.environ,
                    "TEAMSAPPTESTER_BROWSER": "none",
                    "M365_AGENTS_PLAYGROUND_LOGFILE": str(log),
                }
                self._spawn(
                    f"{bot.name} playground",
                    [
                        "node",
                        "--require",
                        str(ROOT / "scripts" / "playground_loopback.cjs"),
                        str(PLAYGROUND_CLI),
                        "-e",
                        f"{bot.url}/api/messages",
                        "-c",
                        "msteams",
                        "-p",
                        str(bot.playground_port),
                        # Its own default says localhost; every other address here is 127.0.0.1.
                        "--service-url",
                        f"{bot.playground_url}/_connector",
                        "--dt",
                    ],
                    env=env,
                    cwd=folder,
                    health_url=f"{bot.playground_url}/_debug/ping",
                    log_name=f"playground-{bot.name.lower()}.out",
                )
        self._record()
        self.wait_until_healthy()

    def _spawn(
        self,
        label: str,
        command: list[str],
        *,
        env: dict[str, str],
        cwd: Path,
        health_url: str,
        log_name: str | None = None,
        pass_fds: tuple[int, ...] = (),
    ) -> None:
        log = self.plan.log_dir / (log_name or f"{label.replace(' ', '-').lower()}.log")
        with log.open("ab") as sink:
            process = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                pass_fds=pass_fds,
            )
        self.processes.append(RunningProcess(label, process, log, health_url))

    def wait_until_healthy(self, within: float = 90.0) -> None:
        deadline = time.monotonic() + within
        pending = list(self.processes)
        while pending:
            for running in list(pending):
                if running.process.poll() is not None:
                    raise StackError(
                        f"{running.label} exited (code {running.process.returncode}); "
                        f"see {running.log}:\n{tail(running.log)}"
                    )
                if http_ok(running.health_url):
                    pending.remove(running)
            if time.monotonic() > deadline:
                raise StackError("not healthy in time: " + ", ".join(p.label for p in pending))
            if pending:
                time.sleep(0.2)  # polling a health endpoint of a process we started

    def first_exit(self) -> RunningProcess | None:
        for running in self.processes:
            if running.process.poll() is not None:
                return running
        return None

    def stop(self) -> None:
        for running in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(running.process.pid, signal.SIGTERM)
        for running in self.processes:
            try:
                running.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(running.process.pid, signal.SIGKILL)
                running.process.wait()
        self.processes.clear()
        if self.plan.state_file is not None and self._recorded:
            self.plan.state_file.unlink(missing_ok=True)  # only our own record, never another run's

    def _record(self) -> None:
        """What `stop` needs: this runner's pid (asked to stop first, so it stops cleanly) and the
        process groups it started (stopped directly if the runner is gone)."""
        if self.plan.state_file is not None:
            record = {"runner": os.getpid(), "pgids": [p.process.pid for p in self.processes]}
            self.plan.state_file.write_text(json.dumps(record))
            self._recorded = True


def install_for_local_user(bot: BotPlan) -> None:
    """What Teams does when a user adds the app: the bot's welcome then waits in the chat (the
    playground keeps it for the first page that opens). Best effort: the stack works without it."""
    url = f"{bot.playground_url}/_debug/conversation/{LOCAL_CHAT_ID}/installation"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=10):
            pass
    except OSError as error:
        say(f"note: could not send {bot.name}'s install event ({error}); the chat works without it")


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def running_stack(plan: StackPlan) -> Iterator[LocalStack]:
    stack = LocalStack(plan)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recorded_runner(state_file: Path) -> int | None:
    """The pid of a `run` that is still up according to its record, else None."""
    try:
        runner = json.loads(state_file.read_text()).get("runner")
    except (OSError, ValueError):
        return None
    return runner if isinstance(runner, int) and _alive(runner) else None


def stop_recorded(state_file: Path = STATE_FILE, within: float = 60.0) -> int:
    if not state_file.exists():
        say("nothing to stop: no local stack is recorded as running")
        return 0
    record = json.loads(state_file.read_text())
    runner = recorded_runner(state_file)
    if runner is not None:
        os.kill(runner, signal.SIGTERM)  # the runner stops what it started and removes its record
        deadline = time.monotonic() + within
        while _alive(runner) and time.monotonic() < deadline:
            time.sleep(0.1)  # waiting for another process to exit: nothing to be notified by
        if not _alive(runner):
            say("stopped")
            return 0
    pgids = record.get("pgids", [])
    for pgid in pgids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
    state_file.unlink(missing_ok=True)
    say(f"stopped {len(pgids)} process group(s)")
    return 0


def run(
    with_playgrounds: bool,
    ports: tuple[int, int, int, int] | None = None,
    state_file: Path = STATE_FILE,
) -> int:
    plan = StackPlan(
        bots=StackPlan.default(*([ports] if ports else [])).bots,
        with_playgrounds=with_playgrounds,
        state_file=state_file,
    )
    running = recorded_runner(state_file)
    if running is not None:
        say(f"error: the local stack is already running (pid {running}); stop it with `make stop` first")
        return 1
    try:
        ensure_python_environment()
        if with_playgrounds:
            ensure_playground()
        stop_requested = False

        def request_stop(signum: int, frame: object) -> None:
            nonlocal stop_requested
            stop_requested = True

        # `make stop` sends SIGTERM; closing the terminal sends SIGHUP: both stop everything cleanly.
        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGHUP, request_stop)
        with running_stack(plan) as stack:
            alice, bob = plan.bots
            if with_playgrounds:
                install_for_local_user(alice)
            say(f"everything is up. Logs: {plan.log_dir.relative_to(ROOT)}/")
            if with_playgrounds:
                say(f"  1. Open Alice's chat:  {alice.playground_url}")
                say("     ask something about travel, or an IT question such as 'My VPN keeps disconnecting'")
                say("     (Bob's greeting appears in this same chat, starting with 'Bob:')")
                say(f"  2. Carry on with Bob: {bob.playground_url}")
                say("     (Bob's side of the same chat; it starts empty, as it shows only what arrives")
                say("     while it is open: type there and Bob answers with the handoff context)")
            card = "/.well-known/agent-card.json"
            say(f"  Agent cards: {alice.url}{card}  {bob.url}{card}")
            say("Press Ctrl-C to stop everything (or run `make stop` in another terminal).")
            try:
                while not stop_requested:
                    exited = stack.first_exit()
                    if exited is not None and not stop_requested:
                        raise StackError(
                            f"{exited.label} stopped unexpectedly; see {exited.log}:\n{tail(exited.log)}"
                        )
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass
            say("stopping...")
        say("stopped.")
        return 0
    except StackError as error:
        say(f"error: {error}")
        return 1
    except subprocess.CalledProcessError as error:
        say(f"error: set-up step failed: {' '.join(map(str, error.cmd))}")
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["run", "stop", "setup"], nargs="?", default="run")
    parser.add_argument("--no-playground", action="store_true", help="start only the two bots")
    parser.add_argument(
        "--ports",
        help="ALICE,BOB,ALICE_PLAYGROUND,BOB_PLAYGROUND instead of 3978,3979,56150,56151",
    )
    parser.add_argument(
        "--state-file", type=Path, default=STATE_FILE, help="where `run` records what it started"
    )
    args = parser.parse_args(argv)
    if args.command == "stop":
        return stop_recorded(args.state_file)
    if args.command == "setup":
        try:
            ensure_python_environment()
            ensure_playground()
        except (StackError, subprocess.CalledProcessError) as error:
            say(f"error: {error}")
            return 1
        return 0
    ports = tuple(int(port) for port in args.ports.split(",")) if args.ports else None
    if ports is not None and len(ports) != 4:
        parser.error("--ports takes four comma-separated numbers")
    return run(with_playgrounds=not args.no_playground, ports=ports, state_file=args.state_file)


if __name__ == "__main__":
    sys.exit(main())
