"""A TCP relay that delays every byte by half a round trip each way: a network, not a server.

The tests' fault proxy parses and re-sends every HTTP request in Python threads; on a 2-core
machine it took 12 CPU-seconds of a 10,000-tag sync behind latency, CPU the registry and the
sync then lacked, so that run measured CPU contention more than latency. This relay only holds
bytes until their time has come, on one asyncio loop with plain protocol callbacks (streams and
a task per chunk cost it 5 CPU-seconds of that sync); chunks keep flowing while earlier ones
wait, as on a real link.

    with latency_relay("http://127.0.0.1:5000", 0.020) as url: ...   # 20 ms round trip
"""

import asyncio
import collections
import contextlib
import multiprocessing
from urllib.parse import urlsplit


class DelayedSide(asyncio.Protocol):
    """One end of a relayed connection: what it receives reaches `peer` `delay` seconds later,
    in order (one timer per side at a time, so equal times cannot reorder chunks)."""

    def __init__(self, delay):
        self.delay = delay
        self.loop = asyncio.get_running_loop()
        self.transport = None
        self.peer = None  # the other side's DelayedSide, once connected
        self.pending = collections.deque()  # (due, bytes or None for end of stream)
        self.timer = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self._hold(data)

    def eof_received(self):
        self._hold(None)
        return True  # keep our write side open for what is still on its way to us

    def connection_lost(self, exc):
        if self.peer is not None and self.peer.transport is not None:
            self._hold(None)

    def _hold(self, data):
        self.pending.append((self.loop.time() + self.delay, data))
        if self.timer is None:
            self.timer = self.loop.call_at(self.pending[0][0], self._deliver)

    def _deliver(self):
        self.timer = None
        now = self.loop.time()
        while self.pending and self.pending[0][0] <= now:
            _, data = self.pending.popleft()
            if self.peer is None or self.peer.transport.is_closing():
                continue
            if data is None:
                self.peer.transport.close()
            else:
                self.peer.transport.write(data)
        if self.pending:
            self.timer = self.loop.call_at(self.pending[0][0], self._deliver)


async def _serve(upstream_host, upstream_port, round_trip, port_out):
    loop = asyncio.get_running_loop()
    delay = round_trip / 2

    class ClientSide(DelayedSide):
        def connection_made(self, transport):
            super().connection_made(transport)
            transport.pause_reading()  # until the upstream connection is there
            loop.create_task(self._connect_upstream())

        async def _connect_upstream(self):
            try:
                _, upstream = await loop.create_connection(
                    lambda: DelayedSide(delay), upstream_host, upstream_port
                )
            except OSError:
                self.transport.close()
                return
            self.peer, upstream.peer = upstream, self
            self.transport.resume_reading()

    server = await loop.create_server(lambda: ClientSide(delay), "127.0.0.1", 0)
    port_out.put(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


def _run(upstream_url, round_trip, port_out):
    upstream = urlsplit(upstream_url)
    asyncio.run(_serve(upstream.hostname, upstream.port, round_trip, port_out))


@contextlib.contextmanager
def latency_relay(upstream_url, round_trip):
    """The relay in a forked process of its own (so it does not share the caller's GIL); its URL.

    Close database connections before: the child must not share their sockets."""
    context = multiprocessing.get_context("fork")
    port_out = context.Queue()
    process = context.Process(target=_run, args=(upstream_url, round_trip, port_out))
    process.start()
    try:
        yield f"http://127.0.0.1:{port_out.get(timeout=30)}"
    finally:
        process.terminate()
        process.join()
