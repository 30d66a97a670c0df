"""Logging in: the mechanism, forced with --auth or chosen from the server's CAPABILITY,
and the SASL exchanges of PLAIN, CRAM-MD5, XOAUTH2 and OAUTHBEARER (RFC 7628).

The choice with a password: over TLS, PLAIN when the server offers AUTH=PLAIN (it carries
any UTF-8 password), else the LOGIN command, else CRAM-MD5; without TLS, CRAM-MD5 first,
since with it the password does not cross the network, then PLAIN, then LOGIN.  With an
OAuth2 token: OAUTHBEARER, else XOAUTH2.  A mechanism the server does not offer is never
tried; the error says what it offers.  Where the server offers SASL-IR, a mechanism
whose client speaks first sends its first response with the command.

Over STARTTLS, a login that is one command may go out before the capabilities said over
TLS are read, chosen from those said before (ahead): see logins.py."""

import base64

from ..diagnostics import server_text
from ..errors import NOPERM, CommandError, UsageError

PASSWORD_MECHANISMS = ("login", "plain", "cram-md5")
TOKEN_MECHANISMS = ("oauthbearer", "xoauth2")
MECHANISMS = ("login", "plain", "cram-md5", "xoauth2", "oauthbearer")


def offered(capabilities):
    """The mechanisms a server offers: its AUTH=X, and "login" unless LOGINDISABLED."""
    names = {c.decode("ascii", "replace").upper() for c in capabilities}
    mechanisms = {name[5:].lower() for name in names if name.startswith("AUTH=")}
    if "LOGINDISABLED" not in names:
        mechanisms.add("login")
    return mechanisms


def choose(capabilities, encrypted, forced, token, host, pipelined=False):
    """The mechanism to log in with; pipelined: commands are to follow the login before
    its answer (logins.py), which only LOGIN carries safely (after AUTHENTICATE a server
    may switch its input to a security layer: Cyrus reads such commands twice)."""
    available = offered(capabilities)
    if forced:
        candidates = (forced,)
    elif token:
        candidates = TOKEN_MECHANISMS
    elif encrypted and pipelined:
        candidates = ("login", "plain", "cram-md5")
    elif encrypted:
        candidates = ("plain", "login", "cram-md5")
    else:
        candidates = ("cram-md5", "plain", "login")
    for mechanism in candidates:
        if mechanism in available:
            return mechanism
    offers = " ".join(sorted(m.upper() for m in available)) or "no mechanism at all"
    if forced:
        reason = f"--auth {forced}: {host} does not offer it"
    elif token:
        reason = f"{host} offers neither OAUTHBEARER nor XOAUTH2"
    else:
        reason = f"{host} offers no way to log in with a password"
        if not encrypted:
            reason += " without TLS (try --tls starttls)"
    raise CommandError(f"{reason}; it offers {offers}", NOPERM)


class Exchange:
    """One SASL exchange: the first challenge gets the initial response; a later
    challenge is, for the OAuth2 mechanisms, the server's error report, answered as the
    mechanism wants and kept in .error; for the others it aborts the exchange."""

    def __init__(self, first, after_error=None, client_first=True):
        self.first, self.after_error = first, after_error
        self.steps, self.error = 0, None
        if client_first:  # its first response needs no challenge: SASL-IR can carry it
            self.initial_response = lambda: self(b"")

    def __call__(self, challenge):
        self.steps += 1
        if self.steps == 1:
            return self.first(challenge)
        if self.after_error is None:
            return None
        self.error = challenge.decode("utf-8", "replace")
        return self.after_error


def _saslname(user):
    return user.replace("=", "=3D").replace(",", "=2C")


def exchange(mechanism, user, secret, host, port):
    """The client side of a SASL mechanism: PLAIN (RFC 4616), CRAM-MD5 (RFC 2195),
    XOAUTH2 (Google's) or OAUTHBEARER (RFC 7628, with the host and port it names)."""
    if mechanism == "plain":
        return Exchange(lambda _: f"\0{user}\0{secret}".encode())
    if mechanism == "cram-md5":
        import hmac  # here: only CRAM-MD5 needs it (hashlib's start)

        return Exchange(lambda challenge: f"{user} "
                        f"{hmac.new(secret.encode(), challenge, 'md5').hexdigest()}".encode(),
                        client_first=False)
    if mechanism == "xoauth2":
        return Exchange(lambda _: f"user={user}\1auth=Bearer {secret}\1\1".encode(), b"")
    return Exchange(lambda _: f"n,a={_saslname(user)},\1host={host}\1port={port}\1"
                    f"auth=Bearer {secret}\1\1".encode(), b"\1")


def at_once(capabilities, mechanism, user, secret, host, port):
    """The login as log_in sends it where it is one command, as imaplib's arguments:
    LOGIN with an ASCII name and password, or AUTHENTICATE PLAIN with its response
    (SASL-IR); else ()."""
    if mechanism == "login" and (user + secret).isascii():
        return ("LOGIN", user, _quoted(secret))
    if mechanism == "plain" and b"SASL-IR" in capabilities:
        initial = exchange(mechanism, user, secret, host, port).initial_response()
        return ("AUTHENTICATE", "PLAIN", _encoded(initial))
    return ()


def ahead(capabilities, forced, user, secret, host, port, pipelined=False):
    """The login to send behind the CAPABILITY asked after STARTTLS (see above), chosen
    from the capabilities said before TLS; () where there is none to send."""
    try:
        mechanism = choose(capabilities, True, forced, False, host, pipelined)
    except CommandError:
        return ()
    return at_once(capabilities, mechanism, user, secret, host, port)


def log_in(client, mechanism, user, secret, host, port):
    """Log in; a refusal is a LoginError with the server's reason."""
    from imapclient.exceptions import LoginError

    from . import logins

    command = at_once(client.capabilities(), mechanism, user, secret, host, port)
    sent = logins.sent_ahead(client)
    if sent:
        status, said = logins.answer(client)
        if status == "OK":
            return
        if sent == command:
            raise LoginError(said)
    if command:
        logins.send(client, command)
        status, said = logins.answer(client)
        if status != "OK":
            raise LoginError(said)
        return
    if mechanism == "login":
        raise UsageError("the LOGIN command carries only ASCII user names and passwords; "
                         "use --auth plain")
    conversation = exchange(mechanism, user, secret, host, port)
    try:
        if client.has_capability("SASL-IR") and hasattr(conversation, "initial_response"):
            _authenticate_at_once(client, mechanism.upper(), conversation)
        else:
            client.sasl_login(mechanism.upper(), conversation)
    except LoginError as exc:
        if conversation.error is None:
            raise
        raise LoginError(f"{server_text(exc)} ({server_text(conversation.error)})") from None


def _authenticate_at_once(client, mechanism, conversation):
    """AUTHENTICATE with the first response in the command (SASL-IR, RFC 4959): one round
    trip; a later challenge (an OAuth2 error report) is answered as without.  Private
    API: imaplib's literal (a bound method: the answer to each challenge) and
    _simple_command, as its authenticate uses them."""
    from imapclient.exceptions import LoginError

    imap = client._imap
    imap.literal = _Challenges(conversation).answer
    try:
        typ, data = imap._simple_command("AUTHENTICATE", mechanism,
                                         _encoded(conversation.initial_response()) or b"=")
    except imap.abort:
        raise
    except imap.error as exc:
        raise LoginError(str(exc)) from None
    finally:
        imap.literal = None
    if typ != "OK":
        raise LoginError(data[-1].decode("utf-8", "replace"))
    imap.state = "AUTH"


class _Challenges:
    def __init__(self, conversation):
        self.conversation = conversation

    def answer(self, challenge):
        return _encoded(self.conversation(base64.b64decode(challenge)))


def _quoted(text):
    """An IMAP quoted string (RFC 9051 4.3), as imaplib quotes LOGIN's password."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _encoded(response):
    """A SASL response as AUTHENTICATE carries it: base64, or * to abort (None)."""
    if response is None:
        return b"*"
    return base64.b64encode(response.encode() if isinstance(response, str) else response)
