"""A loopback TCP proxy that cuts connections: the first `cuts` connections are closed
after `after_bytes` bytes from the server, or, given `at` (pattern, offset), `offset`
bytes past the first `pattern` in what the server sends (`upstream`: what the client
sends); later ones pass untouched.  `sent` keeps what went each way, "up" (from the
client) and "down", over every connection, for tests that read the conversation; `host`
is the address it listens on."""

import socket
import threading


class CuttingProxy:
    def __init__(self, target_port, after_bytes=None, cuts=1, at=None, upstream=False,
                 host="127.0.0.1"):
        self.target_port, self.after_bytes, self.cuts_left = target_port, after_bytes, cuts
        self.at, self.upstream = at, upstream
        self.cuts_done = 0
        self.sent = {"up": bytearray(), "down": bytearray()}
        self.listener = socket.create_server((host, 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                cut = self.cuts_left > 0
                self.cuts_left -= 1
            server = socket.create_connection(("127.0.0.1", self.target_port))
            up = cut and self.upstream
            down = cut and not self.upstream
            threading.Thread(target=self._pump, args=(client, server, up, self.sent["up"]),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, down, self.sent["down"]),
                             daemon=True).start()

    def _pump(self, source, sink, cut, sent_log):
        sent, seen = 0, b""
        limit = self.after_bytes if cut and self.at is None else None
        try:
            while data := source.recv(65536):
                if cut and self.at is not None and limit is None:
                    pattern, offset = self.at
                    found = (seen + data).find(pattern)
                    if found >= 0:
                        limit = sent - len(seen) + found + offset
                    seen = (seen + data)[-len(pattern):]
                if limit is not None and sent + len(data) >= limit:
                    sink.sendall(data[:max(0, limit - sent)])
                    with self.lock:
                        self.cuts_done += 1
                    break
                sink.sendall(data)
                sent_log += data
                sent += len(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self):
        self.listener.close()

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        self.close()
