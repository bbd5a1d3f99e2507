"""A TCP relay that delays every byte by half a round trip each way: a network, not a server.

The tests' fault proxy parses and re-sends every HTTP request in Python threads; on a 2-core
machine it took 12 CPU-seconds of a 10,000-tag sync behind latency, CPU the registry and the
sync then lacked, so that run measured CPU contention more than latency. This relay only copies
bytes on one asyncio loop and holds each chunk until its time has come; chunks keep flowing
while earlier ones wait, as on a real link.

    with latency_relay("http://127.0.0.1:5000", 0.020) as url: ...   # 20 ms round trip
"""

import asyncio
import contextlib
import multiprocessing
from urllib.parse import urlsplit

CHUNK = 64 * 1024


async def _forward(reader, writer, delay):
    """Copy reader → writer, each chunk `delay` seconds after it arrived, in order."""
    loop = asyncio.get_running_loop()
    chunks = asyncio.Queue()

    async def send():
        while (item := await chunks.get()) is not None:
            due, data = item
            await asyncio.sleep(max(0.0, due - loop.time()))
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while data := await reader.read(CHUNK):
            chunks.put_nowait((loop.time() + delay, data))
    except ConnectionError:
        pass
    chunks.put_nowait(None)
    with contextlib.suppress(ConnectionError):
        await sender
        writer.close()


async def _serve(upstream_host, upstream_port, round_trip, port_out):
    async def connection(client_reader, client_writer):
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                upstream_host, upstream_port
            )
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            _forward(client_reader, upstream_writer, round_trip / 2),
            _forward(upstream_reader, client_writer, round_trip / 2),
        )

    server = await asyncio.start_server(connection, "127.0.0.1", 0)
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
