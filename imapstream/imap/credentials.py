"""Where the login name and the password or token come from (see connection.py).

Password sources, first found wins: what the command line gives (--password-file, refused
when group or others may read it, or --password-command, run without a shell), then
$IMAP_PASSWORD, ~/.netrc, then a prompt on /dev/tty.  It is read once per process and
kept for reconnecting.  An OAuth2 access token comes from --oauth2-token-command, run
again for each connection since tokens expire.  Secrets are never put in argv, messages
or records; diagnostics.secret makes every message hide them.  getpass and subprocess are
imported where a password is asked for or run."""

import netrc
import os
import shlex
import stat

from .. import diagnostics
from ..errors import NOPERM, CommandError, UsageError


def user(options, host):
    if not options.user:
        entry = _netrc_entry(host)
        options.user = entry[0] if entry else None
    if not options.user:
        raise UsageError("no user: give -u USER or set IMAP_USER")
    return options.user


def password_source(options, host):
    """The command line beats the environment, which beats ~/.netrc (imapstream(7))."""
    if options.password_file:
        return "file"
    if options.password_command:
        return "command"
    if os.environ.get("IMAP_PASSWORD"):
        return "environment"
    found = _netrc_entry(host)
    if found and found[2] and found[0] in (None, "", options.user):
        return "netrc"
    return "terminal"


def password(options, host):
    """The password and whether it was typed at the prompt (then it may be asked again)."""
    source = password_source(options, host)
    if source == "file":
        return _password_file(options.password_file), False
    if source == "command":
        return _run_for_secret("--password-command", options.password_command), False
    if source == "environment":
        return os.environ["IMAP_PASSWORD"], False
    if source == "netrc":
        return _netrc_entry(host)[2], False
    try:
        with open("/dev/tty", "r+b", buffering=0):
            pass
    except OSError:
        raise UsageError("no password: set IMAP_PASSWORD, or use --password-file, "
                         "--password-command or ~/.netrc") from None
    import getpass

    return getpass.getpass(f"Password for {options.user}@{host}: "), True


def _password_file(path):
    with open(path, encoding="utf-8") as f:
        mode = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
        if mode & 0o044:
            raise UsageError(f"--password-file {path}: group or others can read it (mode "
                             f"{mode:04o}); make it private with chmod 600")
        return f.readline().rstrip("\r\n")


def _run_for_secret(option, command):
    """The first line of what CMD prints; its stderr goes to ours, its output nowhere."""
    import subprocess

    argv = shlex.split(command)
    try:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                              check=False)
    except (OSError, IndexError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is empty"
        raise UsageError(f"{option}: cannot run {argv[0] if argv else 'it'}: {reason}") from None
    if done.returncode != 0:
        raise CommandError(f"{option} exited with status {done.returncode}", NOPERM)
    try:
        lines = done.stdout.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise CommandError(f"{option} printed something that is not UTF-8", NOPERM) from None
    return lines[0] if lines else ""


def _netrc_entry(host):
    try:
        return netrc.netrc().authenticators(host)
    except netrc.NetrcParseError as exc:
        raise UsageError(f"~/.netrc: {exc.msg}") from None
    except OSError:
        return None


class _Kept:
    """The password, kept for reconnecting, and whether it was typed at the prompt;
    shows nothing when printed."""

    def __init__(self, value, typed):
        self.value, self.typed = value, typed

    def __repr__(self):
        return "<password>"


def login_secret(options, host):
    if options.oauth2_token_command:
        token = _run_for_secret("--oauth2-token-command", options.oauth2_token_command)
        if not token:
            raise CommandError("--oauth2-token-command printed no token", NOPERM)
        return diagnostics.secret(token)
    if options.kept_password is None:
        value, typed = password(options, host)
        options.kept_password = _Kept(diagnostics.secret(value), typed)
    return options.kept_password.value
