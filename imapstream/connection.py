"""Connection options shared by every IMAP command, and the connection itself.

Password sources, first found wins: $IMAP_PASSWORD, --password-file, --password-command
(run without a shell), ~/.netrc, then a prompt on /dev/tty.  The password is never put
in argv, messages or records."""

import getpass
import netrc
import os
import shlex
import ssl
import subprocess

import imapclient

from . import cli
from .cli import CommandError, UsageError

DEFAULT_PORTS = {"imaps": 993, "starttls": 143, "none": 143}


def add_options(parser):
    group = parser.add_argument_group("connection")
    group.add_argument("-s", "--server", metavar="HOST[:PORT]", default=os.environ.get(
        "IMAP_SERVER"), help="IMAP server (env IMAP_SERVER)")
    group.add_argument("-u", "--user", default=os.environ.get("IMAP_USER"),
                       help="login name (env IMAP_USER)")
    group.add_argument("--password-file", metavar="FILE",
                       help="read the password from the first line of FILE")
    group.add_argument("--password-command", metavar="CMD",
                       help="run CMD (no shell) and read the password from its output")
    group.add_argument("--tls", choices=("imaps", "starttls", "none"),
                       default=os.environ.get("IMAP_TLS"),
                       help="imaps (default on 993), starttls (default on 143) or none "
                            "(env IMAP_TLS)")
    group.add_argument("--cafile", metavar="FILE", default=os.environ.get("IMAP_CAFILE"),
                       help="trust the CA or self-signed certificate in FILE (env IMAP_CAFILE)")
    group.add_argument("-t", "--timeout", type=float, default=60.0, metavar="SECONDS",
                       help="network timeout (default 60)")


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


def password(options, host):
    if os.environ.get("IMAP_PASSWORD"):
        return os.environ["IMAP_PASSWORD"]
    if options.password_file:
        with open(options.password_file, encoding="utf-8") as f:
            return f.readline().rstrip("\r\n")
    if options.password_command:
        done = subprocess.run(shlex.split(options.password_command), stdout=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, check=False)
        if done.returncode != 0:
            raise CommandError(f"--password-command exited with status {done.returncode}", 77)
        return done.stdout.decode("utf-8").splitlines()[0] if done.stdout.strip() else ""
    found = _netrc_entry(host)
    if found and found[2] and found[0] in (None, "", options.user):
        return found[2]
    try:
        with open("/dev/tty", "r+b", buffering=0):
            pass
    except OSError:
        raise UsageError("no password: set IMAP_PASSWORD, or use --password-file, "
                         "--password-command or ~/.netrc") from None
    return getpass.getpass(f"Password for {options.user}@{host}: ")


def _netrc_entry(host):
    try:
        return netrc.netrc().authenticators(host)
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return None


def connect(options):
    """A logged-in IMAPClient, or a typed exception for the command edge."""
    host, port, tls = server_address(options.server, options.tls)
    if not options.user:
        entry = _netrc_entry(host)
        options.user = entry[0] if entry else None
    if not options.user:
        raise UsageError("no user: give -u USER or set IMAP_USER")
    secret = password(options, host)
    context = ssl.create_default_context(cafile=options.cafile) if tls != "none" else None
    client = imapclient.IMAPClient(host, port=port, ssl=tls == "imaps", ssl_context=context,
                                   timeout=options.timeout)
    try:
        if tls == "starttls":
            if b"STARTTLS" not in client.capabilities():
                raise CommandError(f"{host} does not offer STARTTLS; refusing to log in "
                                   f"without TLS (use --tls none to allow it)", 69)
            client.starttls(context)
        client.login(options.user, secret)
    except imapclient.exceptions.LoginError as exc:
        _shutdown(client)
        reason = " ".join(str(exc).removeprefix("b'").removesuffix("'").split())
        raise CommandError(f"login as {options.user} on {host} failed: {reason}", 77) from None
    except BaseException:
        _shutdown(client)
        raise
    client.normalise_times = False
    return client


def examine(client, name):
    """EXAMINE a folder (read-only); a folder the server refuses is a ServerError."""
    try:
        return client.select_folder(name, readonly=True)
    except Exception as exc:
        message, status = cli.describe(exc)
        if status != cli.PARTIAL:
            raise
        raise cli.ServerError(f"{name}: {message.removeprefix('server error: ')}") from None


def logout(client):
    """LOGOUT if the connection still stands; never raises."""
    try:
        client.logout()
    except Exception:
        _shutdown(client)


def _shutdown(client):
    try:
        client.shutdown()
    except OSError:
        pass
