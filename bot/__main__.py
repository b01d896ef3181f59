"""``python -m bot --env-file env/alice.env``: run one bot instance."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import structlog
import uvicorn
import uvloop

from bot.config import ConfigError, Settings, load_settings
from bot.http_limits import KEEP_ALIVE_SECONDS, BoundedHttpToolsProtocol
from bot.logs import configure_logging
from bot.manifest import ManifestError, write_package
from bot.observability import configure_tracing
from bot.prompts import PromptError
from bot.service import running_bot
from bot.store import StoreError

log = structlog.get_logger("bot")
PACKAGE_DIR = Path("manifests") / "build"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Run one Teams handoff bot.")
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "manifest", "doctor", "routes"],
        help="serve (default): run the bot; manifest: write its Teams app package; doctor: check its "
        "setup; routes CASES: check which bot answers each case",
    )
    parser.add_argument("cases", nargs="?", type=Path, help="routes: the YAML file of cases")
    parser.add_argument("--env-file", help="env file that defines this instance (its values win over ./.env)")
    parser.add_argument("--out", type=Path, default=PACKAGE_DIR, help="manifest: where to write <bot>.zip")
    parser.add_argument(
        "--app-version",
        metavar="X.Y.Z",
        help="manifest: the app version to write (default: MANIFEST_APP_VERSION)",
    )
    parser.add_argument(
        "--bump",
        action="store_true",
        help="manifest: write the next patch version after the package already in --out (for an update)",
    )
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="PATH",
        help="routes: run the cases again with a candidate: a text file (this bot's description), an env "
        "file (the description of the bot its BOT_NAME names) or a prompts directory",
    )
    parser.add_argument(
        "--min-accuracy",
        type=_fraction,
        metavar="F",
        help="routes: exit 1 when fewer than this share of cases route right (0-1, or a percentage: 90%%)",
    )
    args = parser.parse_intermixed_args(argv)
    if (args.command == "routes") != (args.cases is not None):
        parser.error("a cases file goes with the routes command, and only with it")
    try:
        settings = load_settings(args.env_file)
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    if args.command == "manifest":
        try:
            package, version = write_package(settings, args.out, app_version=args.app_version, bump=args.bump)
        except ManifestError as error:
            print(f"manifest error: {error}", file=sys.stderr)
            return 2
        print(package)
        print(f"app version {version}", file=sys.stderr)
        return 0
    if args.command == "doctor":
        from bot.doctor import run_doctor

        return asyncio.run(run_doctor(settings, env_file=args.env_file))
    if args.command == "routes":
        from bot.routing import run_routing_check

        configure_logging(settings.bot_name, "WARNING")
        return run_routing_check(
            settings,
            args.cases,
            compare=args.compare,
            min_accuracy=args.min_accuracy,
            out=sys.stdout,
            err=sys.stderr,
        )
    configure_logging(settings.bot_name, settings.log_level, log_content=settings.log_content)
    try:
        # uvloop: the same asyncio API on libuv, markedly faster for a server that is mostly HTTP.
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(settings, env_file=args.env_file))
    except (ConfigError, PromptError, StoreError) as error:
        print(f"start-up error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


def _fraction(text: str) -> float:
    try:
        value = float(text.removesuffix("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 1 (or 0% and 100%)")
    return value


async def serve(settings: Settings, env_file: str | None = None) -> None:
    tracer_provider = configure_tracing(settings)
    try:
        await _serve(settings, env_file)
    finally:
        if tracer_provider is not None:
            tracer_provider.shutdown()


async def _serve(settings: Settings, env_file: str | None) -> None:
    async with running_bot(settings, env_file) as service:
        if settings.local_development:
            log.warning(
                "local_development_mode",
                detail="LOCAL_DEVELOPMENT=true: /a2a accepts unauthenticated peers, loopback service URLs "
                "are allowed"
                + (
                    ", and Teams requests are not authenticated"
                    if settings.dangerously_allow_unauthenticated_requests
                    else ""
                ),
            )
        config = uvicorn.Config(
            service.web,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=10,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            http=BoundedHttpToolsProtocol,
        )
        server = _GracefulServer(config)
        _settle_after_start_up()
        peers_refresh = asyncio.create_task(service.peers.refresh())  # start-up never waits for peers
        # SIGHUP: read the description and prompts again (bot.persona); a bad edit keeps the old words.
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, service.persona.reload)
        inherited = [_inherited_socket(settings.listen_fd)] if settings.listen_fd is not None else None
        try:
            await server.serve(sockets=inherited)
        finally:
            peers_refresh.cancel()


def _inherited_socket(fd: int) -> socket.socket:
    try:
        return socket.socket(fileno=fd)
    except OSError as error:
        raise ConfigError(f"LISTEN_FD: {fd} is not an open socket ({error.strerror})") from None


def _settle_after_start_up() -> None:
    """Importing the SDKs leaves a lot of freed temporary objects behind; give those pages back
    to the OS so an idle bot's resident size reflects what it really holds.

    What is left (some 250,000 objects: modules, classes, the SDKs' models) lives as long as the
    process, so it is frozen out of the cyclic collector: walked on every full collection, it
    made each one take about 200 ms, a pause in every request in flight. A handoff leaves several
    hundred objects in reference cycles (HTTP responses, retry state), so the youngest generation
    is collected after ``GC_YOUNG_THRESHOLD`` allocations instead of CPython's 700: fewer, larger
    collections of the same garbage. (A frozen object that later falls into an unreachable cycle
    is never collected: at most what a SIGHUP reload replaces, once per reload. Everything a
    request builds is made after the freeze.)"""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


GC_YOUNG_THRESHOLD = 10_000


class _GracefulServer(uvicorn.Server):
    """On SIGTERM or SIGINT, finish in-flight requests and return normally.

    uvicorn's own handler re-raises the signal once it has shut down, which kills the process
    before the store is closed and makes a clean stop exit with -15.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


if __name__ == "__main__":
    sys.exit(main())
