"""The command edge: argument parsing that returns instead of exiting, and the wrapper
that turns any failure into one line on stderr prefixed with the command's name and an
exit status (see errors)."""

import argparse
import contextlib
import os
import sys

from . import __version__, deadline
from .diagnostics import warn
from .errors import BROKEN_PIPE, INTERRUPTED, IOERR, UsageError, describe


class _Exit(Exception):
    def __init__(self, status):
        super().__init__(status)
        self.status = status


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports usage errors as UsageError instead of exiting the process,
    so main() can be called in-process and returns its status; with --version, and a
    help that ends with the environment variables the command reads (.environment:
    (name, what it is for) pairs, added to by the options that read them)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                          help="print the version and exit")
        self.environment = []

    def format_help(self):
        if not self.environment:
            return super().format_help() + "\nenvironment: none read\n"
        width = max(len(name) for name, _ in self.environment) + 2
        lines = "".join(f"  {name:<{width}}{what}\n" for name, what in self.environment)
        return f"{super().format_help()}\nenvironment:\n{lines}"

    def exit(self, status=0, message=None):
        if message:
            sys.stderr.write(message)
        raise _Exit(status)

    def error(self, message):
        raise UsageError(f"{message} (see --help)")


def guarded(prog, body, argv, stdin, stdout):
    """Run body(argv, stdin, stdout) and turn any failure into a message and a status."""
    try:
        try:
            return body(argv, stdin, stdout)
        finally:
            deadline.stop()
    except _Exit as done:
        return done.status
    except KeyboardInterrupt:
        warn(prog, "interrupted")
        return INTERRUPTED
    except BrokenPipeError:
        _silence(stdout)
        return BROKEN_PIPE
    except Exception as exc:  # the command edge: every error becomes one line
        message, status = describe(exc)
        warn(prog, message)
        return status


def _silence(stdout):
    # Keep the interpreter from complaining when it flushes a closed pipe at exit.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout.fileno())
    except (OSError, AttributeError, ValueError):
        pass


def entry_point(main):
    """Console-script wrapper: real stdin/stdout as binary streams, status to exit.

    The process ends once its output is flushed, without the interpreter's teardown
    (~40 ms with the modules a command loads): the next command of a pipeline reads the
    end of its input only when this process is gone, so a pipeline of four would wait
    for four teardowns in turn.  Nothing is left to it: every file a command writes is
    closed by then, its threads are daemons that hold no output."""
    status = main(sys.argv[1:], sys.stdin.buffer, sys.stdout.buffer)
    try:
        sys.stdout.flush()  # what --help and --version wrote as text
    except BrokenPipeError:
        status = status or BROKEN_PIPE
    except OSError as exc:
        warn(os.path.basename(sys.argv[0]), describe(exc)[0])
        status = status or IOERR
    with contextlib.suppress(OSError):
        sys.stderr.flush()
    os._exit(status)
