"""A loopback TCP proxy that makes a link slow: a one-way delay per chunk and an
optional bandwidth cap, each way, and a trace of the conversation.

    with LinkProxy(("127.0.0.1", 143), delay=0.025, rate=20e6) as proxy:
        ... connect to proxy.port ...
        trace = proxy.take_trace()

The link model, per direction: a chunk read from one side (up to CHUNK bytes) leaves
once the chunk before it has left, takes len * 8 / rate seconds to leave (none without
a cap), and is written to the other side delay seconds after it has left, in order.  A
new connection reaches the server 2 x delay after the client opened it (its SYN and
SYN-ACK), so the greeting arrives 3 x delay after connect(), as over a real link.  The
proxy stops reading a side while BUFFER / CHUNK chunks from it are still on the link
(TCP flow control, roughly).

The trace holds one Event per chunk, timed as the client sees it: a client->server
chunk when the client sent it, a server->client chunk when it reached the client.
round_trips() counts, per connection, the times the client waited for the server: the
events of a connection in time order, with its opening as a first client->server event,
count one for each server->client event that directly follows a client->server event,
up to the client's closing its side (the answer to a LOGOUT it does not wait for).
A client that sends commands without waiting (pipelining) has one round trip for them
all; one that sends a command each time an answer arrives has one per command.  Over
a link of round-trip time R, a client whose connections do not overlap needs at least
round_trips() x R seconds.
"""

import asyncio
import socket
import threading
import time
from dataclasses import dataclass

CHUNK = 64 * 1024
BUFFER = 64 << 20
TO_SERVER, TO_CLIENT = "c", "s"
CLOSED = "closed"  # the client closed its side: what the server sends after is not waited for


@dataclass(frozen=True)
class Event:
    connection: int
    direction: str  # TO_SERVER or TO_CLIENT
    time: float  # time.monotonic(), as the client sees it
    size: int


def round_trips(events):
    """The round trips of a trace (see the module docstring)."""
    last, count = {}, 0
    for event in sorted(events, key=lambda e: (e.time, e.direction != TO_SERVER)):
        if last.get(event.connection) == CLOSED:
            continue
        if event.direction == TO_CLIENT and last.get(event.connection, TO_SERVER) == TO_SERVER:
            count += 1
        last[event.connection] = event.direction
    return count


def connections(events):
    return len({event.connection for event in events})


def bytes_to_client(events):
    return sum(event.size for event in events if event.direction == TO_CLIENT)


class LinkProxy:
    """The proxy, serving on 127.0.0.1:port from its own thread, and on
    outward:outward_port as well when given outward, an address of this machine that is
    not loopback: a client connected there sees a network, as over a real link (and
    chooses as it would there, e.g. to compress); the link is the same."""

    def __init__(self, upstream, delay=0.0, rate=None, outward=None):
        self.upstream, self.delay, self.rate = upstream, delay, rate
        self.outward, self.outward_port = outward, None
        self.events, self.number = [], 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.servers = []

    def __enter__(self):
        self.thread.start()
        for host in ("127.0.0.1", self.outward) if self.outward else ("127.0.0.1",):
            self.servers.append(asyncio.run_coroutine_threadsafe(
                asyncio.start_server(self._serve, host, 0), self.loop).result())
        self.port = self.servers[0].sockets[0].getsockname()[1]
        if self.outward:
            self.outward_port = self.servers[1].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *_exc):
        async def close():
            for server in self.servers:
                server.close()
                await server.wait_closed()
            # Connections the client has left with bytes still on the link (the answer to
            # a LOGOUT not waited for) end here, once those are delivered, not when the
            # loop is gone.
            pending = asyncio.all_tasks() - {asyncio.current_task()}
            if pending:
                await asyncio.wait(pending, timeout=1 + 4 * self.delay)
        asyncio.run_coroutine_threadsafe(close(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()

    def take_trace(self):
        """The events since the last call."""
        taken = list(self.events)
        del self.events[:len(taken)]
        return taken

    async def _serve(self, client_reader, client_writer):
        self.number += 1
        connection = self.number
        self.events.append(Event(connection, TO_SERVER, time.monotonic(), 0))
        await asyncio.sleep(2 * self.delay)
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()
            return
        for writer in (client_writer, server_writer):
            writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(
            self._direction(connection, TO_SERVER, client_reader, server_writer),
            self._direction(connection, TO_CLIENT, server_reader, client_writer))

    async def _direction(self, connection, direction, reader, writer):
        queue, room = asyncio.Queue(), asyncio.Semaphore(BUFFER // CHUNK)

        async def deliver():
            while (item := await queue.get()) is not None:
                due, data = item
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if direction == TO_CLIENT:
                    self.events.append(Event(connection, direction, time.monotonic(), len(data)))
                try:
                    writer.write(data)
                    await writer.drain()
                except OSError:
                    break
                room.release()
            writer.close()

        delivering = asyncio.ensure_future(deliver())
        left = 0.0
        try:
            while data := await reader.read(CHUNK):
                now = time.monotonic()
                if direction == TO_SERVER:
                    self.events.append(Event(connection, direction, now, len(data)))
                left = max(now, left) + (len(data) * 8 / self.rate if self.rate else 0.0)
                await room.acquire()
                queue.put_nowait((left + self.delay, data))
        except OSError:
            pass
        if direction == TO_SERVER:
            self.events.append(Event(connection, CLOSED, time.monotonic(), 0))
        queue.put_nowait(None)
        await delivering
