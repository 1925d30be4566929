"""Run a node: uvicorn (uvloop + httptools) serving `build_app`, until SIGTERM or SIGINT.

Once the store is open and the socket listens, exactly one line goes to standard output,
``loosely listening on http://HOST:PORT``, with the real port when port 0 was asked for: scripts and
tests read it instead of guessing a free port. Logs go to standard error.

SNS starts once the socket listens (see `App.start_sns`); if it cannot (an unusable signing key, say),
the error is logged and the server stops with status 1, as it would have had it failed to start.

On SIGTERM or SIGINT uvicorn stops accepting connections and lets in-flight requests finish; long
polls stop waiting at once and answer with what one last claim finds (`App.stop_waiting`), so a
stop does not wait for the last 20-second poll. Then the lifespan stops the workers and closes the
store; the process exits with status 0.

``X-Forwarded-*`` headers are believed only from the proxies ``--forwarded-allow-ips`` names. Without
it uvicorn's proxy-headers middleware is left out altogether: it would trust 127.0.0.1 by default
(so any local process could choose the scheme of the queue URLs) and it costs every request a pass
over the headers and one more coroutine.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from types import FrameType
from typing import Any

import uvicorn

from loosely.config import Settings
from loosely.server.app import App, build_app
from loosely.server.links import advertised_url

__all__ = ["serve"]

log = logging.getLogger("loosely")

# How long in-flight requests may take to finish once a stop began (long polls answer at once then);
# what still runs after it is cancelled.
GRACEFUL_SHUTDOWN_S = 25
# SDKs keep connections in pools for a long time; closing idle ones after uvicorn's default 5 s would make
# them reconnect (or trip over a connection closed under them) between a worker's polls.
KEEP_ALIVE_S = 75
# How long a thread waiting for the GIL lets the holder run before asking it to let go (Python's
# default: 5 ms). The event loop is busy under load, and the threads beside it (the SQLite writer
# back from its COMMIT, the SNS signing threads back from a signature) need the GIL only briefly,
# but wait for it that long first, so a commit's callers could be answered up to 5 ms late. With 0.5 ms
# Publish with SNS fan-out running served 15-45 % more requests per second (docs/delivery.md).
GIL_SWITCH_INTERVAL_S = 0.0005
# Net new container objects (allocations minus frees) that set off a young collection once start-up is
# frozen; Python's default is 700. Each request in flight holds some 30-60 (its task, scope, decoded
# request, answer), so with a few dozen clients the default fired a young collection every few
# requests that found nothing to free: in a 100,000-message pipeline run (48 clients) 1,463 young,
# 132 middle and 13 full collections, 213 ms of the loop's time, 6.4 ms per full one, freed 336
# objects in all. With 10,000 the same run made none. Cyclic garbage still goes within 10,000
# objects (a few MB at most): loosely makes next to none on its request paths.
YOUNG_COLLECTION_THRESHOLD = 10_000


class _Server(uvicorn.Server):
    """uvicorn's server, announcing the bound address once it accepts connections, then starting SNS."""

    failed = False  # SNS could not start
    _settling: asyncio.Task[None] | None = None

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets=sockets)
        if not self.started:
            return
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        app = self.config.app
        if isinstance(app, App):
            app.advertise(advertised_url(host, port))
        sys.stdout.write(f"loosely listening on http://{shown}:{port}\n")
        sys.stdout.flush()
        self._settling = asyncio.create_task(self._settle(app if isinstance(app, App) else None))

    async def shutdown(self, sockets: Any = None) -> None:
        app = self.config.app
        if isinstance(app, App):
            # Before uvicorn's own steps, all of which run before its first await: it stops
            # accepting and marks every connection to close after its current answer, so the
            # long polls answered here cannot be followed by another request on their connection.
            app.stop_waiting()
        await super().shutdown(sockets=sockets)

    async def _settle(self, app: App | None) -> None:
        """Start SNS in the background, then freeze what start-up built; stop the server if SNS fails."""
        if app is not None:
            try:
                await app.sns_ready()
            except Exception:  # logged by the app
                self.failed = True
                self.should_exit = True
                return
        _freeze_start_up_objects()


def serve(settings: Settings) -> int:
    """Serve until told to stop; return the process exit status.

    The cyclic garbage collector is off from the start (the CLI turns it off before it imports the
    server) until SNS has started behind the listening port. Start-up allocates what lives for good:
    modules, classes, functions, tables; the collections its allocations set off found next to nothing
    to free (some 1,000 objects) and cost about 3 % of start-up's instructions (70 young and 6
    middle-generation collections). Turned on at the port instead, the collector's first young
    collection walked everything start-up had built, just when health was first asked for. Once SNS
    is up, one full collection frees start-up's garbage and freezes the rest, and the collector runs
    from then on (`_freeze_start_up_objects`).
    """
    gc.disable()
    try:
        return _serve(settings)
    finally:
        gc.enable()


def _serve(settings: Settings) -> int:
    _configure_logging(settings.log_level)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    app = build_app(settings)
    app.start_sns_when_listening = True
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        ws="none",
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        proxy_headers=settings.forwarded_allow_ips is not None,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_keep_alive=KEEP_ALIVE_S,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    server = _Server(config)
    _absorb_stop_signals()
    server.run()
    return 0 if server.started and not server.failed else 1


def _freeze_start_up_objects() -> None:
    """Keep what start-up built (modules, service models, the store's caches) out of every later collection.

    A full collection walks every tracked object: about 40,000 after start-up, 5-12 ms with the event
    loop stopped, which every request in flight and every long poll's wake-up waits for. Frozen, they
    are never walked again and a full collection takes microseconds. Start-up garbage is collected first
    so that nothing unreachable is kept for good. This runs once SNS has started, after the server
    answers, so that the SNS modules are frozen too and the pause does not delay readiness.

    From then on a young collection waits for `YOUNG_COLLECTION_THRESHOLD` new objects rather than
    Python's 700, which requests in flight under load exceed all the time.
    """
    gc.collect()
    gc.freeze()
    _, middle, full = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, full)
    gc.enable()  # off since start-up began (see `serve`)


def _absorb_stop_signals() -> None:
    """Make SIGTERM/SIGINT harmless outside uvicorn's own handling.

    uvicorn re-raises the signal that stopped it once it has shut down gracefully, so that the
    previous handler runs; with the default handlers the process would then die "killed by SIGTERM"
    (or raise KeyboardInterrupt) after a clean shutdown. A stop that went well exits with 0.
    """

    def ignore(signum: int, frame: FrameType | None) -> None:
        log.debug("signal %d after shutdown", signum)

    signal.signal(signal.SIGTERM, ignore)
    signal.signal(signal.SIGINT, ignore)


def _configure_logging(level_name: str) -> None:
    """Our logs at ``level_name`` on standard error; uvicorn's own chatter only when debugging."""
    level = getattr(logging, level_name.upper())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("uvicorn.error").setLevel(level if level <= logging.DEBUG else logging.WARNING)
