"""Progress on stderr, drawn only when stderr is a terminal: one line redrawn in place."""

import os
import sys
import time

SPINNER = "|/-\\"


class Progress:
    def __init__(self, label, enabled=None):
        stream = sys.stderr
        if enabled is None:
            enabled = stream.isatty() and os.environ.get("TERM") != "dumb"
        self.label, self.enabled, self.stream = label, enabled, stream
        self.messages = self.bytes = self.turn = 0
        self.drawn_at = 0.0

    def add(self, size):
        self.messages += 1
        self.bytes += size
        now = time.monotonic()
        if self.enabled and now - self.drawn_at >= 0.1:
            self.drawn_at = now
            self.turn += 1
            self.stream.write(f"\r{SPINNER[self.turn % 4]} {self.label}: {self.messages} "
                              f"messages, {self.bytes / 1e6:.1f} MB\x1b[K")
            self.stream.flush()

    def clear(self):
        if self.enabled and self.drawn_at:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
