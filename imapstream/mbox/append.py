"""Appending to an mbox file: a dotlock and flock(2) held from before its holdings are
read until the last write, private modes, nothing partial left by a failed write, and
the repair of a tail torn by a crash."""

import contextlib
import fcntl
import os
import time

from .. import diagnostics
from ..errors import DataError
from . import compression, sidecar
from .folders import SUFFIXES

PIECE = 1 << 20  # written at a time: zlib, bz2 and lzma hold their whole output twice


class Appender:
    """Appends formatted messages to one mbox file, holding a dotlock (PATH.lock, as mutt
    and Dovecot take) and an exclusive flock(2) from before the holdings are read until
    close.  A compressed file gets a new member or stream per Appender.  A failed write
    (a full disk) cuts the file back to its size before this Appender, so a reader never
    sees a partial message; a torn tail left by a crash is cut off by cut_torn_tail."""

    def __init__(self, path):
        self.path = path
        self.messages = self.bytes = self.largest = 0
        self.abandoned = False
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, mode=0o700, exist_ok=True)
        self._fd, self._dotlock = lock(path)
        self._start = os.fstat(self._fd).st_size
        self._sink = _Sink(self._fd)
        self._out = None

    def cut_torn_tail(self, offset):
        """Cut a plain file back to the start of its torn last message."""
        if compression.suffix_of(self.path):
            raise DataError(f"{self.path}: the last message is cut short")
        os.ftruncate(self._fd, offset)
        self._start = offset

    def cut_torn_stream(self, end):
        """Cut a compressed file back to the end of its last complete member or stream,
        as Holdings found it; False if the file is no longer than that."""
        if os.fstat(self._fd).st_size <= end:
            return False
        os.ftruncate(self._fd, end)
        self._start = end
        return True

    def complete(self, trailer):
        """Append the trailer a last gzip member lacks, as Holdings found it."""
        self._sink.write(trailer)
        self._sink.flush()
        os.fdatasync(self._fd)
        self._start = os.fstat(self._fd).st_size

    def begin(self):
        """Start what this Appender adds: in a compressed file a new member or stream,
        which close ends, so that even with no message a new file is one its
        decompressor reads (an empty gzip member, an empty bzip2 or xz stream)."""
        if self._out is None:
            suffix = compression.suffix_of(self.path)
            if not suffix and self._start and os.pread(self._fd, 1, self._start - 1) != b"\n":
                self._sink.write(b"\n")  # another program's last line: end it first
            self._out = compression.appending(self._sink, suffix) if suffix else self._sink

    def write(self, text, message_size):
        try:
            self.begin()
            with memoryview(text) as view:  # a compressor's output for each piece is small
                for at in range(0, len(view), PIECE):
                    self._out.write(view[at:at + PIECE])
        except BaseException:
            self.abandon()
            raise
        self.messages += 1
        self.bytes += len(text)
        self.largest = max(self.largest, message_size)

    def close(self, synced=None):
        """Finish the file; call synced(), if given, while the locks are still held."""
        if self._fd is None:
            return
        try:
            if self._out is not None and self._out is not self._sink:
                self._out.close()
            self._sink.flush()
            os.fdatasync(self._fd)  # the data, and the size that reaches it
        except BaseException:
            self.abandon()
            raise
        try:
            if synced is not None:
                synced()
        finally:
            self._release()

    def abandon(self):
        """Drop everything this Appender wrote."""
        self.abandoned = True
        self._sink.discard()
        try:
            os.ftruncate(self._fd, self._start)
        finally:
            self._release()

    def _release(self):
        if self._fd is not None:
            unlock(self._fd, self._dotlock)
            self._fd = None


def lock(path, create=True):
    """(fd, dotlock) of the file at path, open for appending, under an exclusive flock(2)
    and its dotlock; None if create is False and there is no such file.  A file renamed
    over path or removed while the flock was awaited is not path's file any more: the
    flock is taken again on what path names now."""
    flags = os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
    while True:
        try:
            fd = os.open(path, flags | (os.O_CREAT if create else 0), 0o600)
        except FileNotFoundError:
            if create:
                raise
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held = os.fstat(fd)
            try:
                named = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                named = None
            if named is not None and (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino):
                return fd, take_dotlock(path)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def unlock(fd, dotlock):
    os.unlink(dotlock)  # before the flock goes: see take_dotlock
    os.close(fd)


def clear_dead(directory):
    """Remove what killed appenders left in directory: our dotlocks and the temporary
    files of sidecars, flag journals and folds (.NAME.ids.XXXXXXXX, .NAME.flags.XXXXXXXX,
    .NAME.fold.XXXXXXXX).  Each is removed under its file's flock, which every writer
    holds while they exist, so none of a live writer goes."""
    for name in os.listdir(directory):
        temporary = [m for m in (".ids.", ".flags.", ".fold.") if m in name]
        if name.endswith(".lock"):
            mbox = name[:-len(".lock")]
        elif name.startswith(".") and temporary:
            mbox = name[1:name.rindex(temporary[0])]
        else:
            continue
        if not mbox.endswith(SUFFIXES):
            continue
        path = os.path.join(directory, name)
        try:
            fd = os.open(os.path.join(directory, mbox), os.O_RDONLY | os.O_NOFOLLOW
                         | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if not name.endswith(".lock") or _words(path)[1:] == [OUR_MARK]:
                os.unlink(path)
        except OSError:
            pass  # a live writer holds the file, or the leftover is gone already
        finally:
            os.close(fd)


def _words(path):
    with open(path) as f:
        return f.read().split()


def replace(new, path, others=()):
    """Rename the mbox file new, with its sidecar, over path, holding the locks an
    Appender takes on path, so that no append goes into the file replaced and no
    checkpoint of it lands beside the new one; remove the files in others (the
    folder's files with other suffixes) with their sidecars, each under its locks."""
    fd, dotlock = lock(path)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(sidecar.path_for(path))
        os.rename(new, path)
        with contextlib.suppress(FileNotFoundError):
            os.rename(sidecar.path_for(new), sidecar.path_for(path))
    finally:
        unlock(fd, dotlock)
    for other in others:
        held = lock(other, create=False)
        if held is None:
            continue
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(sidecar.path_for(other))
            os.unlink(other)
        finally:
            unlock(*held)


class _Sink:
    """A write buffer over a file descriptor that can be dropped unwritten."""

    LIMIT = 1 << 20

    def __init__(self, fd):
        self.fd, self.buffer = fd, bytearray()

    def write(self, data):
        if len(data) >= self.LIMIT:  # a large message goes out as it is, not copied
            self.flush()
            self._write_all(data)
            return len(data)
        self.buffer += data
        if len(self.buffer) >= self.LIMIT:
            self.flush()
        return len(data)

    def flush(self):
        self._write_all(self.buffer)
        self.buffer.clear()

    def _write_all(self, data):
        written = 0
        with memoryview(data) as view:
            while written < len(view):
                written += os.write(self.fd, view[written:])

    def discard(self):
        self.buffer.clear()


OUR_MARK = "imapstream"


def take_dotlock(path):
    """Create PATH.lock holding our PID and OUR_MARK, for the caller who holds the
    file's flock; wait while another program's live process holds it, break it when its
    holder is gone.  Every imapstream writer takes the flock first and drops the dotlock
    first, so one of our dotlocks seen under the flock was left by a killed writer, and
    is broken at once, whatever process now has its PID."""
    lock = path + ".lock"
    tell_at = time.monotonic() + 5
    while True:
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            if _holder_is_gone(lock):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(lock)
                continue
            if time.monotonic() > tell_at:
                tell_at = float("inf")
                diagnostics.warn("mbox-merge", f"waiting for {lock}, held by another process")
            time.sleep(0.05)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()} {OUR_MARK}\n")
        return lock


def _holder_is_gone(lock):
    try:
        with open(lock) as f:
            words = f.read().split()
        if words[1:] == [OUR_MARK]:
            return True
        pid = int(words[0]) if words else 0
        made = os.path.getmtime(lock)
        if not words:  # its maker writes at once: killed in between, seconds ago
            return made < time.time() - 5
        if pid <= 0:
            return made < time.time() - 600
    except FileNotFoundError:
        return True
    except (OSError, ValueError):
        return False
    if pid == os.getpid():
        return True  # left by an earlier failure in this process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # a process of another user has the PID
    return _not_the_holder(pid, made)


def _not_the_holder(pid, made):
    """Whether the live process pid cannot be the one that made a lock at time made: it
    is a zombie (killed, not yet reaped), or it started over 2 s later, so that the PID
    came round again after the holder died; PIDs wrap at 32768 on many systems.  False
    where /proc does not tell (not Linux)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state, *fields = f.read().rpartition(b")")[2].split()
        with open("/proc/stat", "rb") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith(b"btime "))
        started = boot + int(fields[18]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime
    except (OSError, ValueError, IndexError, StopIteration):
        return False
    return state == b"Z" or started > made + 2
