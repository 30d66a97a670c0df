"""A loopback TCP proxy that records a protocol trace and delays what the server sends,
so that a client that waits for an answer is told apart from one that sends on.

    with TraceProxy(port, delay=0.1) as proxy:
        ... connect to proxy.port ...
        proxy.round_trips(), proxy.commands()

Every chunk the server sends reaches the client delay seconds later (in order).
round_trips() counts, per connection, the times the client waited for the server: in
the events of a connection in time order, a server->client chunk that follows a
client->server chunk (the connection's opening counts as one) is a round trip, as
bench/linkproxy.py counts them, up to the client's closing its side (what the server
sends then, such as the answer to a LOGOUT, nobody waits for).  A client that sends
several commands in one go, or within delay of each other, has one round trip for them.
commands() is every line the client sent, literals and all."""

import socket
import threading
import time


class TraceProxy:
    def __init__(self, target_port, delay=0.1, host="127.0.0.1"):
        """host: the address to listen on (one that is not loopback stands for a
        network, see imapstream/imap/dial.py)."""
        self.target_port, self.delay = target_port, delay
        self.events = []  # (connection, direction "c" or "s", time, bytes)
        self.lock = threading.Condition()
        self.listener = socket.create_server((host, 0))
        self.port = self.listener.getsockname()[1]
        self.number = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        self.listener.close()

    def _record(self, connection, direction, data):
        with self.lock:
            self.events.append((connection, direction, time.monotonic(), data))
            self.lock.notify_all()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.number += 1
            self._record(self.number, "c", b"")
            server = socket.create_connection(("127.0.0.1", self.target_port))
            for source, sink, direction in ((client, server, "c"), (server, client, "s")):
                threading.Thread(target=self._pump, args=(self.number, source, sink, direction),
                                 daemon=True).start()

    def _pump(self, connection, source, sink, direction):
        try:
            while data := source.recv(65536):
                if direction == "s":
                    time.sleep(self.delay)
                self._record(connection, direction, data)
                sink.sendall(data)
        except OSError:
            pass
        if direction == "c":
            self._record(connection, "closed", b"")
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _closed(self):
        """Wait until the client has closed every connection it opened (it need not wait
        for the answer to its LOGOUT, so the proxy may not have read it yet)."""
        self.lock.wait_for(lambda: sum(e[1] == "closed" for e in self.events) == self.number,
                           timeout=30)

    def round_trips(self):
        last, count = {}, 0
        with self.lock:
            self._closed()
            events = sorted(self.events, key=lambda e: (e[2], e[1] != "c"))
        for connection, direction, _time, _data in events:
            if last.get(connection) == "closed":
                continue  # what the server sends after the client hung up is not waited for
            if direction == "s" and last.get(connection, "c") == "c":
                count += 1
            last[connection] = direction
        return count

    def commands(self):
        with self.lock:
            self._closed()
            sent = b"".join(data for _c, direction, _t, data in self.events if direction == "c")
        return sent.split(b"\r\n")[:-1]
