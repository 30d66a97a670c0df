"""Connection options shared by every IMAP command, and the connection itself.

TLS: certificates are verified against the system's CAs, or --cafile; --fingerprint pins
one certificate instead (no CA or host name check: the pin is stronger); --insecure
checks nothing and says so loudly.  --tls starttls never falls back to plain text, and
--tls none warns unless the server is on this machine.

The login name and the password or token: credentials.py, asked again after a refused
login at the prompt up to PROMPTS times.

The IMAP and TLS libraries (imapclient, imaplib, ssl: ~60 ms) are imported by connect,
so that a command that never connects, such as imap-fetch with nothing to fetch, starts
without them."""

import os

from .. import deadline, diagnostics, errors
from ..diagnostics import server_text
from ..errors import NOPERM, UNAVAILABLE, CommandError, UsageError
from . import auth, credentials

DEFAULT_PORTS = {"imaps": 993, "starttls": 143, "none": 143}
PROMPTS = 3
ENVIRONMENT = [
    ("IMAP_SERVER", "default for --server"),
    ("IMAP_USER", "default for --user"),
    ("IMAP_PASSWORD", "the password, unless --password-file or --password-command is given"),
    ("IMAP_TLS", "default for --tls"),
    ("IMAP_CAFILE", "default for --cafile"),
    ("IMAP_FINGERPRINT", "default for --fingerprint"),
    ("IMAP_CERTFILE", "default for --certfile"),
    ("IMAP_KEYFILE", "default for --keyfile"),
    ("HOME", "where .netrc is"),
]
DEADLINE = 6 * 3600.0  # seconds; see deadline.py
MAX_WAIT = 60.0  # seconds; see session.py
LINK_COMPRESSION = ("auto", "on", "off")


def add_options(parser):
    group = parser.add_argument_group("connection")
    group.add_argument("-s", "--server", metavar="HOST[:PORT]", default=os.environ.get(
        "IMAP_SERVER"), help="IMAP server (env IMAP_SERVER)")
    group.add_argument("-u", "--user", default=os.environ.get("IMAP_USER"),
                       help="login name (env IMAP_USER)")
    group.add_argument("--password-file", metavar="FILE",
                       help="read the password from the first line of FILE, which group and "
                            "others must not be able to read")
    group.add_argument("--password-command", metavar="CMD",
                       help="run CMD (no shell) and read the password from its output")
    group.add_argument("--auth", choices=auth.MECHANISMS, type=str.lower,
                       help="log in with this mechanism (default: chosen from what the "
                            "server offers)")
    group.add_argument("--oauth2-token-command", metavar="CMD",
                       help="run CMD (no shell) for an OAuth2 access token, the first line "
                            "of its output, and log in with OAUTHBEARER or XOAUTH2")
    group.add_argument("--tls", choices=("imaps", "starttls", "none"),
                       default=os.environ.get("IMAP_TLS"),
                       help="imaps (default unless the port is 143), starttls (default "
                            "on 143) or none (env IMAP_TLS)")
    group.add_argument("--cafile", metavar="FILE", default=os.environ.get("IMAP_CAFILE"),
                       help="trust the CA or self-signed certificate in FILE instead of the "
                            "system's (env IMAP_CAFILE)")
    group.add_argument("--fingerprint", metavar="SHA256",
                       default=os.environ.get("IMAP_FINGERPRINT"),
                       help="trust only the certificate with this SHA-256 fingerprint (hex, "
                            "colons optional, several separated by commas); no CA or host "
                            "name check then, as the pin is stronger (env IMAP_FINGERPRINT)")
    group.add_argument("--certfile", metavar="FILE", default=os.environ.get("IMAP_CERTFILE"),
                       help="present the TLS client certificate in FILE (PEM; it may hold "
                            "the key too), as some servers require (env IMAP_CERTFILE)")
    group.add_argument("--keyfile", metavar="FILE", default=os.environ.get("IMAP_KEYFILE"),
                       help="the private key of --certfile, when FILE does not hold it "
                            "(env IMAP_KEYFILE)")
    group.add_argument("--insecure", action="store_true",
                       help="do not check the server's certificate at all: anyone on the "
                            "way can read the password and the mail (warns every time)")
    group.add_argument("-t", "--timeout", type=float, default=60.0, metavar="SECONDS",
                       help="network timeout (default 60)")
    group.add_argument("--link-compression", choices=LINK_COMPRESSION, type=str.lower,
                       default="auto", help="COMPRESS=DEFLATE where the server offers it: "
                       "auto (default: when messages cross a network, not on loopback), "
                       "on or off")
    group.add_argument("--deadline", type=float, default=DEADLINE, metavar="SECONDS",
                       help=f"stop (exit 75) this long after the first connection, "
                            f"whatever the server does; 0 for never (default {DEADLINE:g})")
    group.add_argument("--max-wait", type=float, default=MAX_WAIT, metavar="SECONDS",
                       help=f"when the server says to wait (Microsoft 365's throttling), "
                            f"wait up to this long and go on; longer, or a limit it does "
                            f"not time (Gmail's daily download limit): stop with exit 75 "
                            f"(default {MAX_WAIT:g})")
    parser.set_defaults(prog=parser.prog, kept_password=None, on_data=None, bulk=False,
                        tls_context=None, tls_session=None, dialled=None, after_login=None)
    parser.environment += ENVIRONMENT


def server_address(text, tls):
    """(host, port, tls) from HOST[:PORT] or [V6]:PORT and an optional TLS mode."""
    if not text:
        raise UsageError("no server: give -s HOST[:PORT] or set IMAP_SERVER")
    host, port = text, None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
    elif text.count(":") == 1:
        host, port = text.split(":")
    if port is not None:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(f"bad port in --server {text!r}")
        port = int(port)
    if tls is None:
        tls = "starttls" if port == 143 else "imaps"
    if tls not in DEFAULT_PORTS:
        raise UsageError(f"--tls must be imaps, starttls or none, not {tls!r}")
    return host, port or DEFAULT_PORTS[tls], tls


def _check_options(options, tls):
    if not options.max_wait >= 0:
        raise UsageError(f"--max-wait wants seconds, 0 or more, not {options.max_wait:g}")
    if not options.deadline >= 0:
        raise UsageError(f"--deadline wants seconds, 0 or more, not {options.deadline:g}")
    if options.fingerprint and options.insecure:
        raise UsageError("--fingerprint and --insecure contradict each other: the pinned "
                         "certificate is checked; leave out --insecure")
    if options.fingerprint and tls == "none":
        raise UsageError("--fingerprint needs TLS: use --tls imaps or starttls")
    if (options.certfile or options.keyfile) and tls == "none":
        raise UsageError("a client certificate needs TLS: use --tls imaps or starttls")
    if options.keyfile and not options.certfile:
        raise UsageError("--keyfile is the key of --certfile FILE: give that too")
    if options.password_file and options.password_command:
        raise UsageError("give --password-file or --password-command, not both")
    token = bool(options.oauth2_token_command)
    if options.auth in auth.TOKEN_MECHANISMS and not token:
        raise UsageError(f"--auth {options.auth} needs --oauth2-token-command CMD")
    if options.auth in auth.PASSWORD_MECHANISMS and token:
        raise UsageError(f"--auth {options.auth} takes a password, not "
                         f"--oauth2-token-command")


def login_source(options):
    """{"user": the login name, "secret": where the password or token comes from:
    "oauth2", "file", "command", "environment", "netrc" or "terminal"}, found as connect
    finds them, without reading any secret."""
    host, _port, _tls = server_address(options.server, options.tls)
    user = credentials.user(options, host)
    secret = "oauth2" if options.oauth2_token_command else credentials.password_source(
        options, host)
    return {"user": user, "secret": secret}


def dial_early(options):
    """Start connecting to the server (dial.py), where the options name it soundly; the
    first connection connect makes takes that socket.  Options it would refuse are said
    there, with nothing dialled."""
    try:
        host, port, tls = server_address(options.server, options.tls)
        _check_options(options, tls)
    except UsageError:
        return
    from . import dial

    options.dialled = dial.Dial((host, port), options.timeout, tls == "starttls")


def connect(options):
    """A logged-in client, or a typed exception for the command edge."""
    from . import dial

    dialled, options.dialled = options.dialled, None  # for the first attempt only
    after_login, options.after_login = options.after_login, None  # logins.after_login
    with dial.offered(dialled):
        return _connect(options, after_login)


def _connect(options, after_login):
    from imapclient.exceptions import LoginError

    from . import tls as tls_contexts

    host, port, tls = server_address(options.server, options.tls)
    _check_options(options, tls)
    credentials.user(options, host)
    context = None
    if tls != "none":  # one context per process: a reconnect may resume its TLS session
        context = options.tls_context or tls_contexts.tls_context(
            options.cafile, options.fingerprint, options.insecure, options.certfile,
            options.keyfile)
        options.tls_context = context
        if options.insecure:
            diagnostics.warn(options.prog, f"WARNING: --insecure: the certificate of {host} is not "
                                   f"checked; anyone on the way can read the password and "
                                   f"the mail")
    for attempt in range(1, PROMPTS + 1):
        secret = credentials.login_secret(options, host)
        deadline.start(options.deadline)  # after the prompt: the clock starts only once
        try:
            client = _log_in(options, host, port, tls, context, secret, after_login)
            break
        except LoginError as exc:
            after_login = None
            refused = f"login as {options.user} on {host} failed: {server_text(exc)}"
            kept = options.kept_password
            if kept is None or not kept.typed or attempt == PROMPTS:
                raise CommandError(refused, NOPERM) from None
            diagnostics.warn(options.prog, f"{refused}; try again")
            options.kept_password = None
    client.normalise_times = False
    if getattr(options, "qresync", False) and client.has_capability("QRESYNC") and \
            client._imap.enable_tag is None:  # not sent behind the login (logins.py)
        client.enable_later("QRESYNC")  # with the next command, before any EXAMINE
    return client


def _log_in(options, host, port, tls, context, secret, after_login=None):
    """A new connection, logged in; a refused login is imapclient's LoginError.
    after_login: see logins.after_login."""
    import ssl

    from imapclient.exceptions import LoginError

    from . import logins, transport
    from . import tls as tls_contexts

    if context is not None:
        context = tls_contexts.Resuming(context, options.tls_session)
    try:
        client = transport.Client(host, port=port, ssl=tls == "imaps", ssl_context=context,
                                  timeout=options.timeout)
    except ssl.SSLCertVerificationError as exc:
        raise _untrusted(options, host, port, tls, exc) from None
    client.watch_literals(options.on_data)
    if after_login is not None:
        logins.after_login(client, after_login)
    try:
        pipelined = after_login is not None and (options.user + secret).isascii()
        if tls == "starttls" and not client.secured():
            _starttls(client, host, context, () if options.oauth2_token_command else auth.ahead(
                client.capabilities(), options.auth, options.user, secret, host, port,
                pipelined))
        elif tls == "none" and not transport.on_loopback(client):
            diagnostics.warn(options.prog, f"warning: --tls none: the mail and the login cross the "
                                   f"network to {host} unencrypted")
        mechanism = auth.choose(client.capabilities(), tls != "none", options.auth,
                                bool(options.oauth2_token_command), host, pipelined)
        auth.log_in(client, mechanism, options.user, secret, host, port)
        options.tls_session = client.tls_session()
        if _compression_pays(options, client):
            client.compress()
    except LoginError:
        _shutdown(client)
        raise
    except ssl.SSLCertVerificationError as exc:
        _shutdown(client)
        raise _untrusted(options, host, port, tls, exc) from None
    except BaseException:
        _shutdown(client)
        raise
    return client


def _compression_pays(options, client):
    """--link-compression: on, off, or auto: on for a command that downloads or uploads
    messages (options.bulk) over a network.  Listing and a run with nothing new would
    only pay COMPRESS's round trip; on loopback there is no link to spare."""
    from . import transport

    if options.link_compression == "auto":
        return options.bulk and not transport.on_loopback(client)
    return options.link_compression == "on"


def _untrusted(options, host, port, tls, exc):
    """The refusal of an untrusted certificate, with the certificate's fingerprint (the
    form --fingerprint takes), subject and expiry, read over a second connection."""
    from . import certificate

    der = certificate.peer_certificate(host, port, tls, options.timeout)
    shown = f" (it shows {certificate.describe(der)})" if der else ""
    return CommandError(f"the certificate of {host} is not trusted: {exc.verify_message}"
                        f"{shown}; use --cafile FILE for a private CA or self-signed "
                        f"certificate, or, once you have checked the fingerprint, "
                        f"--fingerprint SHA256 to pin it", UNAVAILABLE)


def _starttls(client, host, context, login_ahead):
    """STARTTLS or an error: never a silent fall back to plain text.  login_ahead: see
    auth.py."""
    import imaplib

    from .transport import starttls_refused

    if b"STARTTLS" not in client.capabilities():
        raise starttls_refused(host, client.capabilities(), None)
    try:
        client.starttls(context, login_ahead)
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error as exc:
        raise starttls_refused(host, client.capabilities(), exc) from None


def examine(client, name):
    """EXAMINE a folder (read-only); a folder the server refuses is a ServerError."""
    try:
        return client.select_folder(name, readonly=True)
    except Exception as exc:
        message, status = errors.describe(exc)
        if status != errors.PARTIAL:
            raise
        raise errors.ServerError(f"{name}: {message.removeprefix('server error: ')}") from None


def logout(client):
    """LOGOUT if the connection still stands, not waited for; the connection closed;
    never raises."""
    try:
        client.logout_unanswered()
    except Exception:
        _shutdown(client)


def _shutdown(client):
    try:
        client.shutdown()
    except OSError:
        pass
