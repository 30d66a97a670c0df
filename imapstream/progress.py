"""Progress on stderr, drawn only when stderr is a terminal: one line, redrawn in place
every INTERVAL seconds by a thread of its own, so that it moves while a large message
arrives (the transport reports each chunk it reads) and while the server is silent:

    FETCH Personal/2005/Q3: 935/2440 messages, 43.6/752.2 MB (5%), 2.1 MB/s, ETA 5:49

The totals are those of the records read so far (the listing may still be running);
the bytes are those of message data received, counted as the records' sizes are (the
message as the server sends it).

Shared (imapbackup -j N): the processes given one directory draw one line between
them.  Each writes its counts to DIR/PID (a JSON object, replaced whole) every
INTERVAL and when it ends; the one holding the lock on DIR/lock draws the sums over
every file there, with the folders being fetched (sorted), the rate since the
earliest start.  When it ends it erases the line and lets go, and another takes over."""

import contextlib
import fcntl
import os
import sys
import threading
import time

import orjson

INTERVAL = 0.5
COUNTS = ("messages", "expected_messages", "received", "expected_bytes")


class Progress:
    def __init__(self, label, enabled=None, stream=None, clock=time.monotonic, shared=None):
        stream = stream or sys.stderr
        if enabled is None:
            enabled = stream.isatty() and os.environ.get("TERM") != "dumb"
        self.label, self.enabled, self.stream, self.clock = label, enabled, stream, clock
        self.shared = Shared(shared) if enabled and shared else None
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

    def state(self):
        return dict({key: getattr(self, key) for key in COUNTS},
                    folders=[self.folder] if self.folder else [], started=self.started)

    def line(self, state=None):
        state = state or self.state()
        received, messages = state["received"], state["messages"]
        total = max(state["expected_bytes"], received)
        folders = ", ".join(state["folders"])
        text = (f"{self.label}{' ' + folders if folders else ''}: "
                f"{messages}/{state['expected_messages']} messages, "
                f"{received / 1e6:.1f}/{total / 1e6:.1f} MB")
        if total:
            text += f" ({100 * received // total}%)"
        started = state["started"]
        elapsed = self.clock() - started if started is not None else 0
        if elapsed > 0 and received:
            rate = received / elapsed
            text += f", {rate / 1e6:.1f} MB/s"
            if total > received:
                seconds = int((total - received) / rate)
                text += f", ETA {seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        return text

    def _redraw(self):
        while not self._stop.wait(INTERVAL):
            if self.shared is None:
                self._draw(self.line())
                continue
            try:
                self.shared.publish(self.state())
                if self.shared.lead():
                    self._draw(self.line(self.shared.sums()))
            except OSError:
                continue  # the directory went (its run is ending): no line this time

    def _draw(self, line):
        self.stream.write(f"\r{_fit(line, self.stream)}\x1b[K")
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
        if self.shared is not None:
            with contextlib.suppress(OSError):  # its counts stay in the sums
                self.shared.publish(dict(self.state(), folders=[]))
            self.shared.close()


class Shared:
    """The directory the processes of one line share (see above)."""

    def __init__(self, directory):
        self.directory = directory
        self.path = os.path.join(directory, str(os.getpid()))
        self.lock = None

    def publish(self, state):
        temporary = f"{self.path}.new"
        with open(temporary, "wb") as f:
            f.write(orjson.dumps(state))
        os.replace(temporary, self.path)

    def lead(self):
        """True once this process holds the lock: it draws, until it ends."""
        if self.lock is None:
            descriptor = os.open(os.path.join(self.directory, "lock"),
                                 os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(descriptor)
                return False
            self.lock = descriptor
        return True

    def sums(self):
        sums = dict.fromkeys(COUNTS, 0)
        sums["folders"], starts = [], []
        for name in os.listdir(self.directory):
            if not name.isdigit():
                continue
            try:
                with open(os.path.join(self.directory, name), "rb") as f:
                    state = orjson.loads(f.read())
            except (OSError, orjson.JSONDecodeError):
                continue
            for key in COUNTS:
                sums[key] += state[key]
            sums["folders"] += state["folders"]
            if state["started"] is not None:
                starts.append(state["started"])
        sums["folders"].sort()
        sums["started"] = min(starts, default=None)
        return sums

    def close(self):
        if self.lock is not None:
            os.close(self.lock)
            self.lock = None


def _fit(line, stream):
    """line cut to the terminal's width less one column (a line that wrapped could not
    be redrawn in place); uncut when the width is unknown."""
    try:
        width = os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return line
    return line if width < 2 or len(line) < width else line[:width - 4] + "..."
