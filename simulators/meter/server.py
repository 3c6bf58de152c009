"""asyncio TCP servers for a fleet of simulated meters, in a background thread.

One listening socket per meter, served as a meter's TCP-UDP setup object
(class 41) says: at most ``max_connections`` connections at once
(nb_of_sim_conn, default 2: the head-end and a field tool, as smart meters
commonly allow), each with its own association; a further client waits until
one of them ends.  A connection that sends nothing for
``inactivity_timeout_s`` (inactivity_time_out) is dropped.  So one idle TCP
connection holds one slot, never the meter: the next client is served at
once.  The associations share the meter's state (energy, credit, tokens,
invocation counters), as in a real meter.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Iterable
from typing import Any

from .association import Meter
from .link import HdlcLink, WrapperLink
from .model import Clock, MeterConfig, MeterState, utc_now


class _MeterServer:
    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self.slots = asyncio.Semaphore(meter.config.max_connections)
        self.random = random.Random(meter.config.seed)
        self.server: asyncio.base_events.Server | None = None
        self.connections = 0
        self.dropped = 0
        self.writers: set[asyncio.StreamWriter] = set()

    async def handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.writers.add(writer)
        async with self.slots:
            self.connections += 1
            cfg = self.meter.config
            link: Any = (
                HdlcLink(self.meter)
                if cfg.framing == "hdlc"
                else WrapperLink(self.meter)
            )
            try:
                while True:
                    try:
                        data = await asyncio.wait_for(
                            reader.read(65536), cfg.inactivity_timeout_s
                        )
                    except TimeoutError:
                        break
                    if not data:
                        break
                    try:
                        replies = link.feed(data)
                    except ValueError:
                        break  # unrecoverable framing error: drop the line
                    for reply in replies:
                        if cfg.latency_ms:
                            await asyncio.sleep(cfg.latency_ms / 1000.0)
                        if cfg.drop_rate and self.random.random() < cfg.drop_rate:
                            self.dropped += 1
                            continue
                        writer.write(reply)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                link.close()
                self.writers.discard(writer)
                writer.close()
                with contextlib.suppress(ConnectionError, OSError):
                    await writer.wait_closed()


class MeterSimulator:
    """Serve simulated meters on 127.0.0.1 from a background asyncio loop.

    ``clock`` returns the current UTC datetime (default real time); tests pass a
    controllable one to advance simulated time without sleeping.
    """

    def __init__(
        self,
        configs: Iterable[MeterConfig],
        host: str = "127.0.0.1",
        clock: Clock = utc_now,
    ) -> None:
        self.configs = list(configs)
        indexes = [c.index for c in self.configs]
        if len(set(indexes)) != len(indexes):
            raise ValueError("meter indexes must be unique")
        self.host = host
        self.clock = clock
        self._meters = {c.index: Meter(c, clock) for c in self.configs}
        self._servers: dict[int, _MeterServer] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def fleet(
        cls,
        count: int,
        first_port: int,
        *,
        host: str = "127.0.0.1",
        clock: Clock = utc_now,
        **common: Any,
    ) -> MeterSimulator:
        """``count`` meters on consecutive ports (0 = let the OS pick each)."""
        base_seed = int(common.pop("seed", 0))
        configs = [
            MeterConfig(
                index=i,
                port=first_port + i if first_port else 0,
                seed=base_seed + i,
                **common,
            )
            for i in range(count)
        ]
        return cls(configs, host=host, clock=clock)

    # --- lifecycle ------------------------------------------------------------

    def start(self) -> MeterSimulator:
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._listen())
            except BaseException as exc:  # report bind errors to start()
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.close()

        self._thread = threading.Thread(target=run, name="meter-sim", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    async def _listen(self) -> None:
        try:
            for index, meter in self._meters.items():
                srv = _MeterServer(meter)
                srv.server = await asyncio.start_server(
                    srv.handle, self.host, meter.config.port, backlog=16
                )
                # Port 0 means "any free port": publish the one we got.
                meter.config.port = srv.server.sockets[0].getsockname()[1]
                self._servers[index] = srv
        except BaseException:
            await self._shutdown()
            raise

    async def _shutdown(self) -> None:
        for srv in self._servers.values():
            if srv.server is not None:
                srv.server.close()
        # Abort open connections so each handler ends on its own (cancelling
        # the tasks makes asyncio log spurious errors).
        for srv in self._servers.values():
            for writer in list(srv.writers):
                writer.transport.abort()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=5)
            for task in pending:
                task.cancel()
        for srv in self._servers.values():
            if srv.server is not None:
                with contextlib.suppress(Exception):
                    await srv.server.wait_closed()

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None
        self._loop = None
        self._servers.clear()

    def __enter__(self) -> MeterSimulator:
        # ``with MeterSimulator(...).start() as sim`` is fine too.
        return self if self._thread is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- inspection -------------------------------------------------------------

    def meter(self, index: int) -> MeterState:
        """The live state of meter ``index``, advanced to the clock's now.

        The state is shared with the server thread and integrates lazily: after
        moving a test clock, call ``state.advance()`` before reading fields.
        """
        state = self._meters[index].state
        state.advance()
        return state

    def port(self, index: int) -> int:
        return self._meters[index].config.port

    def dropped_replies(self, index: int) -> int:
        srv = self._servers.get(index)
        return srv.dropped if srv else 0

    def describe(self) -> list[dict[str, Any]]:
        """JSON-friendly summary of the meters (what the CLI prints)."""
        return [
            {
                "index": c.index,
                "serial": c.serial,
                "host": self.host,
                "port": c.port,
                "framing": c.framing,
                "system_title": c.system_title.hex().upper(),
                "prepaid": c.prepaid,
                "load_kw": c.load_kw,
            }
            for c in self.configs
        ]
