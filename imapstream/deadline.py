"""--deadline: an overall time limit for a command that talks to a server, so that a
server trickling a byte just inside each read timeout cannot keep a run (and the cron
runs after it) alive for ever.  It runs from the command's first connection; once it
passes, the read under way, or the next one, raises DeadlineReached (exit 75), and what
was written before stays whole: nothing is cut in the middle of a record or message,
as only a read from the server is interrupted."""

import signal

from .errors import DeadlineReached

_state = {"seconds": None, "expired": False, "reading": 0}


def start(seconds):
    """Start the clock, unless running already; seconds 0: no deadline."""
    if _state["seconds"] is None and seconds:
        _state.update(seconds=seconds, expired=False, reading=0)
        signal.signal(signal.SIGALRM, _expire)
        signal.setitimer(signal.ITIMER_REAL, seconds)


def stop():
    """The command is over: no deadline any more (commands run in-process in turn)."""
    if _state["seconds"] is not None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        _state.update(seconds=None, expired=False, reading=0)


class reading:
    """A read from the server, which the deadline may interrupt."""

    def __enter__(self):
        check()
        _state["reading"] += 1

    def __exit__(self, *exc):
        _state["reading"] -= 1


def check():
    if _state["expired"]:
        raise DeadlineReached(f"stopped at the deadline of {_state['seconds']:g} seconds "
                              f"(--deadline); what was done is kept, run again to go on")


def _expire(_signum, _frame):
    _state["expired"] = True
    if _state["reading"]:
        check()
