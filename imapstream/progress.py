"""Progress on stderr, drawn only when stderr is a terminal: one line, redrawn in place
every INTERVAL seconds by a thread of its own, so that it moves while a large message
arrives (the transport reports each chunk it reads) and while the server is silent:

    FETCH Personal/2005/Q3: 935/2440 messages, 43.6/752.2 MB (5%), 2.1 MB/s, ETA 5:49

The totals are those of the records read so far (the listing may still be running);
the bytes are those of message data received, counted as the records' sizes are (the
message as the server sends it)."""

import os
import sys
import threading
import time

INTERVAL = 0.5


class Progress:
    def __init__(self, label, enabled=None, stream=None, clock=time.monotonic):
        stream = stream or sys.stderr
        if enabled is None:
            enabled = stream.isatty() and os.environ.get("TERM") != "dumb"
        self.label, self.enabled, self.stream, self.clock = label, enabled, stream, clock
        self.folder = None
        self.messages = self.expected_messages = 0
        self.received = self.expected_bytes = 0
        self.started = None
        self.drawn = False
        self._stop = threading.Event()
        self._thread = None

    def expect(self, size):
        """A record to fetch, of size bytes."""
        self.expected_messages += 1
        self.expected_bytes += size
        if self.enabled and self._thread is None:
            self.started = self.clock()
            self._thread = threading.Thread(target=self._redraw, daemon=True)
            self._thread.start()

    def arrived(self, count):
        """count bytes of message data received."""
        self.received += count

    def add(self, _size):
        """A message fetched whole."""
        self.messages += 1

    def line(self):
        total = max(self.expected_bytes, self.received)
        text = (f"{self.label}{' ' + self.folder if self.folder else ''}: "
                f"{self.messages}/{self.expected_messages} messages, "
                f"{self.received / 1e6:.1f}/{total / 1e6:.1f} MB")
        if total:
            text += f" ({100 * self.received // total}%)"
        elapsed = self.clock() - self.started if self.started is not None else 0
        if elapsed > 0 and self.received:
            rate = self.received / elapsed
            text += f", {rate / 1e6:.1f} MB/s"
            if total > self.received:
                seconds = int((total - self.received) / rate)
                text += f", ETA {seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        return text

    def _redraw(self):
        while not self._stop.wait(INTERVAL):
            self.stream.write(f"\r{self.line()}\x1b[K")
            self.stream.flush()
            self.drawn = True

    def clear(self):
        """Erase the line (before a warning); the next redraw brings it back."""
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def close(self):
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        self.clear()
