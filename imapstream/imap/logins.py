"""A login sent without waiting for its answer, and commands sent behind it.

Over STARTTLS the capabilities said before TLS are asked again over it (RFC 9051
6.2.1), and the login is chosen from them: a round trip before the login can go out.
Where the capabilities said before TLS already choose a login that is one command
(auth.at_once), that login goes out behind the CAPABILITY, over the TLS just verified,
and is answered after it; auth.log_in keeps it only where the server accepted it or
where the capabilities said over TLS choose the same command.

Behind a LOGIN, the first commands of a session may go out before its answer
(after_login, once per connection): the server carries them out once it has logged in,
or refuses them if it did not.  Not behind AUTHENTICATE, after which a server may read
its input through a security layer (RFC 9051 6.2.2; Cyrus reads them twice).

Private API (see transport.py): imaplib's _command, _command_complete,
_untagged_response, _get_tagged_response, capabilities and state, and IMAPClient's
_imap."""


class LoginInFlight:
    """The part of transport's imaplib connection that sends a login unanswered."""

    login_ahead = ()  # the login to send behind the CAPABILITY after STARTTLS
    login_sent = ()  # the login sent unanswered, and its tag until answered
    login_tag = None
    after_login = None  # sends the commands to go behind the login, once

    def capabilities_and_login(self):
        """CAPABILITY over TLS, login_ahead behind it; the capabilities read."""
        asked = self._command("CAPABILITY")
        command, self.login_ahead = self.login_ahead, ()
        self.send_login(command)
        typ, said = self._untagged_response(*self._command_complete("CAPABILITY", asked),
                                            "CAPABILITY")
        if said == [None]:
            raise self.error("no CAPABILITY response from server")
        self.capabilities = tuple(said[-1].decode("ascii", "replace").upper().split())

    def send_login(self, command):
        self.login_sent = command
        self.login_tag = self._command(*command)
        if command[0] == "LOGIN" and self.after_login is not None:  # see auth.choose
            send, self.after_login = self.after_login, None
            send()

    def login_answer(self):
        """(status, the server's text) of the login sent; logged in after an OK.  A BAD
        is an answer here."""
        tag, self.login_tag = self.login_tag, None
        typ, data = self._get_tagged_response(tag)
        if typ == "OK":
            self.state = "AUTH"
        said = data[-1] if data else b""
        return typ, said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)


def sent_ahead(client):
    """The login sent behind CAPABILITY and not yet answered, else ()."""
    return client._imap.login_sent if client._imap.login_tag else ()


def send(client, command):
    client._imap.send_login(command)


def answer(client):
    return client._imap.login_answer()


def after_login(client, send_commands):
    """send_commands(client) runs once the login is sent, before its answer."""
    client._imap.after_login = lambda: send_commands(client)
