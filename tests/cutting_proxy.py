"""A loopback TCP proxy that cuts connections: the first `cuts` connections are closed
after `after_bytes` bytes from the server, later ones pass untouched."""

import socket
import threading


class CuttingProxy:
    def __init__(self, target_port, after_bytes, cuts):
        self.target_port, self.after_bytes, self.cuts_left = target_port, after_bytes, cuts
        self.cuts_done = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
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
                limit = self.after_bytes if self.cuts_left > 0 else None
                self.cuts_left -= 1
            server = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pump, args=(client, server, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, limit), daemon=True).start()

    def _pump(self, source, sink, limit):
        sent = 0
        try:
            while data := source.recv(65536):
                if limit is not None and sent + len(data) >= limit:
                    sink.sendall(data[:limit - sent])
                    with self.lock:
                        self.cuts_done += 1
                    break
                sink.sendall(data)
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
