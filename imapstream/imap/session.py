"""An IMAP session that survives a dropped connection: a transient failure (connection
cut, BYE, timeout) reconnects with backoff, EXAMINEs the folder again, and retries the
operation; RETRIES failures in a row end it with the last error.  A server that says a
limit is reached (errors.server_limit) is waited for, as long as it asks up to
--max-wait, or else ends the run.  The IMAP and TLS libraries are loaded at the first
call (see connection.py)."""

import time

from .. import diagnostics, errors
from . import connection

RETRIES = 3
BACKOFF_SECONDS = (1, 2, 4)


class Session:
    def __init__(self, options, prog, lazy=False):
        """lazy: log in at the first call, not now (a run with nothing to fetch never
        does); a failure to connect then is not retried either."""
        self.options, self.prog = options, prog
        self.client = None if lazy else connection.connect(options)
        self.connected = not lazy
        self.folder = self.uidvalidity = None
        self.reconnects = 0

    def examine(self, folder):
        """EXAMINE folder; returns the SELECT response."""
        selected = self.call(lambda client: connection.examine(client, folder))
        self.folder, self.uidvalidity = folder, selected[b"UIDVALIDITY"]
        return selected

    def unselect(self):
        """Leave the folder examined last: UNSELECT where the server offers it, else
        CLOSE, which after EXAMINE expunges nothing (RFC 3501 6.4.2).  Some servers
        (Courier) refuse APPEND to a folder while it is selected read-only."""
        if self.folder is None:
            return
        self.call(lambda client: client.unselect_folder()
                  if client.has_capability("UNSELECT") else client.close_folder())
        self.folder = self.uidvalidity = None

    def call(self, operation, on_retry=None):
        """operation(client), retried after a reconnect when its failure is transient
        (errors.transient); on_retry() runs before each retry.  A refusal by the server
        (NO, BAD) becomes a ServerError naming the folder; other failures are raised as
        they are, for the command edge to describe."""
        import imaplib

        from imapclient import exceptions as imap_errors

        if not self.connected:
            self.client, self.connected = connection.connect(self.options), True
        failures = 0
        while True:
            try:
                if self.client is None:
                    self._reconnect()
                return operation(self.client)
            except (imaplib.IMAP4.error, imap_errors.IMAPClientError) as exc:
                limit = errors.server_limit(exc)
                if limit is not None:
                    failures = self._wait_or_stop(limit, failures)
                    continue
                reason, status = errors.describe(exc)
                if status == errors.PARTIAL:
                    where = f"{self.folder}: " if self.folder else ""
                    raise errors.ServerError(where + reason.removeprefix("server error: ")
                                             ) from None
                failures = self._retry_or_raise(exc, failures, on_retry)
            except Exception as exc:
                failures = self._retry_or_raise(exc, failures, on_retry)

    def _retry_or_raise(self, exc, failures, on_retry):
        if not errors.transient(exc) or failures >= RETRIES:
            raise exc
        message, _status = errors.describe(exc)
        diagnostics.warn(self.prog, f"{message}; reconnecting")
        if self.client is not None:
            connection.logout(self.client)
            self.client = None
        time.sleep(BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS) - 1)])
        if on_retry:
            on_retry()
        return failures + 1

    def _wait_or_stop(self, limit, failures):
        """The server says a limit is reached: wait as long as it asks, if that is at most
        --max-wait seconds, and try again over a new connection (Microsoft 365 ends the
        one it throttles), up to RETRIES times in a row; else stop the run."""
        text, wait = limit
        if wait is None or wait > self.options.max_wait or failures >= RETRIES:
            raise errors.server_limit_reached(limit) from None
        diagnostics.warn(self.prog, f"the server asks to wait {wait:g} s ({text}); waiting")
        if self.client is not None:
            connection.logout(self.client)
            self.client = None
        time.sleep(wait)
        return failures + 1

    def _reconnect(self):
        self.client = connection.connect(self.options)
        self.reconnects += 1
        if self.folder is not None:
            selected = connection.examine(self.client, self.folder)
            if selected[b"UIDVALIDITY"] != self.uidvalidity:
                raise errors.ServerError(f"{self.folder}: UIDVALIDITY changed while "
                                      f"reconnecting; list it again")

    def restart(self):
        """A new connection in place of the one standing, at once (listing_ahead.py)."""
        connection.logout(self.client)
        self.client = connection.connect(self.options)

    def close(self):
        if self.client is not None:
            connection.logout(self.client)
