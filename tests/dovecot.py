"""A throwaway Dovecot IMAP server for tests.

``Dovecot(directory)`` writes a self-contained dovecot.conf, a self-signed
certificate and one passwd-file per user into *directory*, and ``start()`` runs
``dovecot -F`` on two free loopback ports: ``port`` (plain IMAP with STARTTLS)
and ``ssl_port`` (IMAPS).  ``stop()`` terminates the master and everything it
spawned.

Root versus non-root:

* As root, Dovecot refuses uid 0 for mail, so every user's mail belongs to
  ``nobody``/``nogroup`` (65534).  The mail processes run as that uid and must
  be able to traverse *directory*: it has to be world-searchable all the way
  up (pytest's tmp dirs are 0700, so callers use ``tempfile.mkdtemp`` and
  chmod it 0755).  Internal and login processes use Debian's ``dovecot`` and
  ``dovenull`` users when they exist.
* As non-root, every service and all mail run as the current user, and the
  login chroots are switched off.

Ports: ``free_port()`` only finds a port free at that moment, so another test session
may pick the same one and bind it first; this server's Dovecot then fails to bind it,
but until it exits the other's would answer in its place.  Hence each instance greets
with a token of its own (``login_greeting``): ``start()`` waits for that token on both
ports, and tries other ports when the master exits instead.

Users: Dovecot checks a passwd-file for changes at most once a second, so a
user appended to a shared file right after a lookup stays invisible for up to
a second.  Hence one file per user (``passwd.d/%u``): a new user's file is
read at its first lookup.

OAuth2: the oauth2 passdb validates JWTs locally (introspection_mode = local) against an
HMAC key written into *directory*, so XOAUTH2 and OAUTHBEARER work offline;
``oauth2_token(user)`` makes a token for a user, valid for an hour.

Forcing a new UIDVALIDITY: ``doveadm -c conf mailbox update --uid-validity N
-u USER MAILBOX`` works (doveadm asks the running server's auth-userdb socket
for the user, then edits the index directly), for maildir and mbox, to a
higher or a lower N.  The next SELECT, in a new session, reports N; a session
that had the mailbox selected is disconnected at its next command ("IMAP
session state is inconsistent" / "Mailbox UIDVALIDITY changed").  Deleting and
recreating a folder also gives it a new UIDVALIDITY.
"""

from __future__ import annotations

import base64
import grp
import hashlib
import hmac
import itertools
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import imapclient

HOST = "127.0.0.1"

LAYOUTS = {
    "fs": "maildir:~/Maildir:LAYOUT=fs",
    "maildir++": "maildir:~/Maildir",
    "mbox": "mbox:~/mail:INBOX=~/mail/inbox",
}

FIXED_USERS = {"alice": "fs", "bob": "maildir++", "carol": "mbox"}

SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
# The IMAP server process itself, from Debian's dovecot-imapd (or a libexec layout):
# dovecot and doveadm run without it, and every login then fails.
IMAP_PROGRAMS = ("/usr/lib/dovecot/imap", "/usr/libexec/dovecot/imap")
IMAP_ZLIB = """
protocol imap {
  mail_plugins = $mail_plugins imap_zlib
}
"""


def outward_address() -> str | None:
    """An IPv4 address of this machine that is not loopback (the one a packet to the
    internet would leave from), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1; a UDP connect sends nothing
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def find_program(name: str) -> str | None:
    """Find *name* on PATH or in the sbin directories a non-root PATH lacks."""
    path = os.pathsep.join([os.environ.get("PATH", ""), *SBIN_DIRS])
    return shutil.which(name, path=path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _existing_user(*names: str) -> pwd.struct_passwd:
    users = {u.pw_name: u for u in pwd.getpwall()}
    return next(users[name] for name in names if name in users)


class DovecotError(RuntimeError):
    pass


class Dovecot:
    def __init__(self, directory: str | os.PathLike, extra_config: str = "",
                 imap_zlib: bool = False):
        self.dir = Path(directory).resolve()
        self.extra_config = extra_config  # appended to dovecot.conf
        if imap_zlib:  # COMPRESS=DEFLATE (RFC 4978), offered after login
            self.extra_config += IMAP_ZLIB
        self.host, self.port, self.ssl_port = HOST, 0, 0
        self.conf = self.dir / "dovecot.conf"
        self.log = self.dir / "dovecot.log"
        self.cafile = self.dir / "cert.pem"
        self.keyfile = self.dir / "key.pem"
        self.passwd_dir = self.dir / "passwd.d"
        self.oauth2_key = secrets.token_bytes(32)
        self.greeting = f"imapstream-test-{secrets.token_hex(8)} ready."
        self.binary = find_program("dovecot")
        self.doveadm_binary = find_program("doveadm")
        self._passwords: dict[str, str] = {}
        self._counter = itertools.count(1)
        self._proc: subprocess.Popen | None = None
        if os.geteuid() == 0:
            nobody = _existing_user("nobody")
            self.mail_uid, self.mail_gid = nobody.pw_uid, nobody.pw_gid
            internal = _existing_user("dovecot", "nobody")
            self.internal_user = internal.pw_name
            self.internal_group = grp.getgrgid(internal.pw_gid).gr_name
            self.login_user = _existing_user("dovenull", "nobody").pw_name
        else:
            me = pwd.getpwuid(os.geteuid())
            self.mail_uid, self.mail_gid = me.pw_uid, me.pw_gid
            self.internal_user = self.login_user = me.pw_name
            self.internal_group = grp.getgrgid(me.pw_gid).gr_name

    @property
    def available(self) -> bool:
        return bool(self.binary and self.doveadm_binary
                    and any(os.access(path, os.X_OK) for path in IMAP_PROGRAMS))

    # -- lifecycle ---------------------------------------------------------

    def start(self, attempts: int = 3) -> Dovecot:
        if not self.available:
            raise DovecotError("dovecot, doveadm or /usr/lib/dovecot/imap not found (Debian: "
                               "apt-get install dovecot-imapd)")
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "home").mkdir(exist_ok=True)
        self._make_certificate()
        if not self.passwd_dir.exists():
            self.passwd_dir.mkdir(mode=0o755)
            for user, layout in FIXED_USERS.items():
                self.add_user(user, f"{user}-secret", LAYOUTS[layout])
        for attempt in range(attempts):
            self.port, self.ssl_port = free_port(), free_port()
            self._write_config()
            try:
                self._launch()
                return self
            except DovecotError:
                self.stop()
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        # The master ran in its own session: reap any child it left behind.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _launch(self) -> None:
        with open(self.dir / "dovecot.stderr", "ab") as stderr:
            self._proc = subprocess.Popen(
                [self.binary, "-F", "-c", str(self.conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                raise DovecotError(f"dovecot exited with {code}:\n{self.log_tail()}")
            if self._greets():
                return
            time.sleep(0.05)
        raise DovecotError(f"dovecot did not answer on port {self.port}:\n{self.log_tail()}")

    def _greets(self) -> bool:
        """Both ports answer with this instance's greeting (not another's)."""
        try:
            with socket.create_connection((self.host, self.port), timeout=2) as sock:
                if not self._own(sock.makefile("rb").readline()):
                    return False
            with (socket.create_connection((self.host, self.ssl_port), timeout=2) as sock,
                  self.ssl_context().wrap_socket(sock, server_hostname="localhost") as tls):
                return self._own(tls.makefile("rb").readline())
        except (OSError, ssl.SSLError):
            return False

    def _own(self, line: bytes) -> bool:
        return line.startswith(b"* OK") and line.rstrip().endswith(self.greeting.encode())

    def log_tail(self, lines: int = 30) -> str:
        text = ""
        for path in (self.dir / "dovecot.stderr", self.log):
            if path.exists():
                text += "".join(path.read_text(errors="replace").splitlines(True)[-lines:])
        return text

    # -- files -------------------------------------------------------------

    def _make_certificate(self) -> None:
        if self.cafile.exists() and self.keyfile.exists():
            return
        outward = outward_address()  # for a proxy there that stands for a network
        subj_alt = "subjectAltName=DNS:localhost,IP:127.0.0.1" + (f",IP:{outward}"
                                                                  if outward else "")
        args = f"req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -addext {subj_alt} -days 2"
        subprocess.run(
            ["openssl", *args.split(), "-keyout", str(self.keyfile), "-out", str(self.cafile)],
            check=True,
            capture_output=True,
        )

    def _write_config(self) -> None:
        d = self.dir
        special_use = "\n".join(
            f"  mailbox {name} {{\n    special_use = \\{name}\n    auto = no\n  }}"
            for name in ("Sent", "Drafts", "Trash")
        )
        self._write_oauth2_config()
        # Login/anvil chroots need root; the tests gain nothing from them anyway.
        self.conf.write_text(f"""\
base_dir = {d}/run
state_dir = {d}/state
log_path = {self.log}
instance_name = imapstream-test-{self.port}
login_greeting = {self.greeting}
protocols = imap
listen = {HOST}
ssl = yes
ssl_cert = <{self.cafile}
ssl_key = <{self.keyfile}
auth_mechanisms = plain login cram-md5 xoauth2 oauthbearer
disable_plaintext_auth = no
auth_failure_delay = 0
first_valid_uid = 1
last_valid_uid = 0
first_valid_gid = {min(1, self.mail_gid)}
last_valid_gid = 0
mail_max_userip_connections = 1000
default_internal_user = {self.internal_user}
default_internal_group = {self.internal_group}
default_login_user = {self.login_user}

passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {d}/oauth2.conf.ext
}}
passdb {{
  driver = passwd-file
  mechanisms = plain login cram-md5
  args = scheme=PLAIN username_format=%u {self.passwd_dir}/%u
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.passwd_dir}/%u
}}

namespace inbox {{
  inbox = yes
{special_use}
}}

service imap-login {{
  chroot =
  inet_listener imap {{
    port = {self.port}
  }}
  inet_listener imaps {{
    port = {self.ssl_port}
    ssl = yes
  }}
}}
service imap-urlauth-login {{
  chroot =
}}
service anvil {{
  chroot =
  # Mode 0 disables the auth penalty: after one wrong password every later
  # login from 127.0.0.1 would otherwise be delayed by seconds.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{self.extra_config}""")

    def _write_oauth2_config(self) -> None:
        keys = self.dir / "oauth2-keys"
        key_file = keys / "default" / "HS256" / "default"  # azp / alg / kid
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(base64.b64encode(self.oauth2_key).decode())
        for path in (keys, keys / "default", key_file.parent, key_file):
            path.chmod(0o755 if path.is_dir() else 0o644)
        (self.dir / "oauth2.conf.ext").write_text(
            f"introspection_mode = local\nlocal_validation_key_dict = fs:posix:prefix={keys}/\n"
            f"username_attribute = sub\n")

    def oauth2_token(self, user: str) -> str:
        """A JWT access token for *user*, signed with the server's key, valid for an hour."""

        def encode(data: bytes) -> bytes:
            return base64.urlsafe_b64encode(data).rstrip(b"=")

        now = int(time.time())
        header = encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = encode(json.dumps({"sub": user, "iat": now - 60, "exp": now + 3600}).encode())
        signature = hmac.new(self.oauth2_key, header + b"." + claims, hashlib.sha256).digest()
        return b".".join((header, claims, encode(signature))).decode()

    # -- users -------------------------------------------------------------

    def add_user(self, name: str, password: str, mail_location: str) -> None:
        """Add a user, usable at once: each user has a passwd-file of its own."""
        if any(c in name + password for c in ":\n") or "\n" in mail_location:
            raise ValueError("user name and password must not contain ':' or newlines")
        if name in self._passwords:
            raise ValueError(f"user {name!r} exists")
        home = self.home(name)
        home.mkdir(mode=0o700)
        os.chown(home, self.mail_uid, self.mail_gid)
        line = (
            f"{name}:{{PLAIN}}{password}:{self.mail_uid}:{self.mail_gid}::{home}::"
            f"userdb_mail={mail_location}\n"
        )
        path = self.passwd_dir / name
        path.write_text(line)
        path.chmod(0o644)
        self._passwords[name] = password

    def new_user(self, layout: str = "fs") -> tuple[str, str]:
        """Create a fresh, empty user u1, u2, ... with the given mailbox layout."""
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {sorted(LAYOUTS)}")
        name = f"u{next(self._counter)}"
        password = f"pw-{secrets.token_hex(6)}"
        self.add_user(name, password, LAYOUTS[layout])
        return name, password

    def password(self, user: str) -> str:
        return self._passwords[user]

    def home(self, user: str) -> Path:
        return self.dir / "home" / user

    def write_mail_file(self, user: str, relpath: str, data: bytes) -> Path:
        """Write a file (e.g. an mbox) below the user's home, owned by the mail uid."""
        home = self.home(user)
        path = home / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        for p in [path, *path.parents]:
            if p == home.parent:
                break
            os.chown(p, self.mail_uid, self.mail_gid)
        return path

    # -- clients -----------------------------------------------------------

    def doveadm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.doveadm_binary, "-c", str(self.conf), *args],
            check=check,
            capture_output=True,
            text=True,
        )

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cafile))

    def client(self, user: str, **kw) -> imapclient.IMAPClient:
        """A logged-in IMAPClient over plain IMAP (no TLS) on ``port``."""
        kw.setdefault("timeout", 30)
        client = imapclient.IMAPClient(self.host, port=self.port, ssl=False, **kw)
        client.login(user, self.password(user))
        return client

    def env(self, user: str) -> dict[str, str]:
        """Environment variables the plumbing commands read to reach this server."""
        return {
            "IMAP_SERVER": f"{self.host}:{self.port}",
            "IMAP_USER": user,
            "IMAP_PASSWORD": self.password(user),
            "IMAP_TLS": "starttls",
            "IMAP_CAFILE": str(self.cafile),
        }
