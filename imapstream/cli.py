"""The command edge: argument parsing that returns instead of exiting, and the wrapper
that turns any failure into one line on stderr prefixed with the command's name and an
exit status (see errors)."""

import argparse
import os
import sys

from . import deadline
from .diagnostics import warn
from .errors import BROKEN_PIPE, INTERRUPTED, UsageError, describe


class _Exit(Exception):
    def __init__(self, status):
        super().__init__(status)
        self.status = status


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports usage errors as UsageError instead of exiting the process,
    so main() can be called in-process and returns its status."""

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
    """Console-script wrapper: real stdin/stdout as binary streams, status to exit."""
    sys.exit(main(sys.argv[1:], sys.stdin.buffer, sys.stdout.buffer))
