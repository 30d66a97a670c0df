"""A throwaway Courier-IMAP (Debian's courier-imap, unpacked by debs.py, not installed:
it conflicts with dovecot-imapd) on a free loopback port.  Needs root.

Courier's programs have their paths compiled in (/etc/courier, /usr/lib/courier,
/usr/lib/courier-authlib, /usr/libexec/gam_server, /run/courier/authdaemon), so
``start()`` runs them in a private mount and PID namespace (``unshare -m -p``, so that
stopping it ends every process it started): read-only overlays put the unpacked /usr
and a private /etc (courier/authdaemonrc, pam.d/imap, passwd and shadow with the test
users) over the real ones, and /run is a fresh tmpfs.  There authdaemond (authpam:
pam_unix against the private shadow) answers imaplogin, and couriertcpd listens.
gamin's gam_server must be there: without it every command waits a second for the File
Access Monitor.  The mail is each user's ~/Maildir, owned by nobody.  Folders are below
INBOX with '.' as the delimiter (INBOX.A.B); CREATE INBOX.A.B.C shows INBOX.A and
INBOX.A.B as \\Noselect until created.  Courier refuses APPEND to a folder selected
read-only, and quotes header field names in FETCH responses
(BODY[HEADER.FIELDS ("MESSAGE-ID")]).
"""

from __future__ import annotations

import itertools
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import imapclient
from debs import Unavailable, greets, library_path, unpacked
from dovecot import HOST, free_port

NAME = "courier"
PACKAGES = ["courier-imap", "courier-base", "courier-authlib", "gamin"]
MAIL_UID = MAIL_GID = 65534  # nobody
USERS = 8  # made before start: the overlaid /etc is not changed while mounted

_START = """\
set -e
mount --make-rprivate /
mount -t overlay overlay -o lowerdir={dir}/etc:/etc /etc
mount -t overlay overlay -o lowerdir={root}/usr:/usr /usr
mount -t tmpfs tmpfs /run
mkdir -p /run/courier/authdaemon
/usr/lib/courier/courier-authlib/authdaemond &
set -a
. /etc/courier/imapd
exec {root}/usr/sbin/couriertcpd -address={host} -nodnslookup -noidentlookup \\
    -maxprocs=40 -maxperip=40 {port} /usr/lib/courier/courier/imaplogin \\
    {root}/usr/bin/imapd Maildir
"""


class CourierError(RuntimeError):
    pass


class Confined(Unavailable):
    """The machine forbids the mounts Courier's namespace needs (a container without
    CAP_SYS_ADMIN): not a missing package, so CI skips rather than fails."""


def _mounts_allowed() -> bool:
    """Whether unshare may make a private namespace with a tmpfs and an overlay mount,
    as _START does."""
    with tempfile.TemporaryDirectory() as lower:
        probe = (f"mount --make-rprivate / && mount -t tmpfs tmpfs /run && "
                 f"mount -t overlay overlay -o lowerdir={lower}:/etc /etc")
        return subprocess.run(["unshare", "-m", "-p", "-f", "--mount-proc", "sh", "-c", probe],
                              stdin=subprocess.DEVNULL, capture_output=True).returncode == 0


class Courier:
    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory).resolve()
        self.host, self.port = HOST, 0
        self.root: Path | None = None
        self._passwords: dict[str, str] = {}
        self._free = iter(range(1, USERS + 1))
        self._proc: subprocess.Popen | None = None

    def start(self) -> Courier:
        """Unpack (debs.Unavailable if impossible) and run the server (CourierError)."""
        if os.geteuid() != 0 or shutil.which("unshare") is None:
            raise Unavailable("Courier's compiled-in paths need root and unshare -m")
        if not _mounts_allowed():
            raise Confined("this machine forbids mount namespaces (no CAP_SYS_ADMIN?)")
        self.root = unpacked(NAME, PACKAGES)
        self._write_etc()
        for attempt in itertools.count():
            self.port = free_port()
            try:
                return self._launch()
            except CourierError:
                self.stop()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _launch(self) -> Courier:
        script = self.dir / "start.sh"
        script.write_text(_START.format(dir=self.dir, root=self.root, host=self.host,
                                        port=self.port))
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LD_LIBRARY_PATH": library_path(
            self.root)}
        with open(self.log, "ab") as stderr:
            self._proc = subprocess.Popen(
                ["unshare", "-m", "-p", "-f", "--kill-child", "--mount-proc", "sh",
                 str(script)], stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
                env=env, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise CourierError(f"courier exited with {self._proc.returncode}: "
                                   f"{self.log_tail()}")
            if greets(self.host, self.port):
                return self
            time.sleep(0.05)
        raise CourierError(f"courier did not answer on port {self.port}: {self.log_tail()}")

    def stop(self) -> None:
        """Kill unshare (it ignores SIGTERM); its --kill-child then ends the namespace's
        first process, and with it every process of the namespace."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()

    @property
    def log(self) -> Path:
        return self.dir / "courier.stderr"

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""

    def _write_etc(self) -> None:
        """The private /etc: Debian's courier configuration, authpam, and USERS users
        k1..kN (uid nobody, home below directory) in copies of passwd and shadow."""
        etc = self.dir / "etc"
        shutil.copytree(self.root / "etc/courier", etc / "courier", dirs_exist_ok=True)
        (etc / "courier/authdaemonrc").write_text(
            'authmodulelist="authpam"\ndaemons=2\nauthdaemonvar=/run/courier/authdaemon\n')
        (etc / "pam.d").mkdir(exist_ok=True)
        (etc / "pam.d/imap").write_text("auth required pam_unix.so\n"
                                        "account required pam_unix.so\n"
                                        "session required pam_permit.so\n")
        passwd, shadow = Path("/etc/passwd").read_text(), Path("/etc/shadow").read_text()
        for number in range(1, USERS + 1):
            name, password = f"k{number}", f"pw-{secrets.token_hex(6)}"
            home = self.dir / "home" / name
            for sub in ("cur", "new", "tmp"):
                (home / "Maildir" / sub).mkdir(parents=True, exist_ok=True)
            for path in (home, *home.rglob("*")):
                os.chown(path, MAIL_UID, MAIL_GID)
            hashed = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password,
                                    capture_output=True, text=True, check=True).stdout.strip()
            passwd += f"{name}:x:{MAIL_UID}:{MAIL_GID}::{home}:/usr/sbin/nologin\n"
            shadow += f"{name}:{hashed}:19000:0:99999:7:::\n"
            self._passwords[name] = password
        (etc / "passwd").write_text(passwd)
        (etc / "shadow").write_text(shadow)
        os.chmod(etc / "shadow", 0o640)

    def new_user(self) -> tuple[str, str]:
        """A fresh user (one of the USERS made before start): (name, password)."""
        name = f"k{next(self._free)}"
        return name, self._passwords[name]

    def client(self, user: str) -> imapclient.IMAPClient:
        client = imapclient.IMAPClient(self.host, port=self.port, ssl=False, timeout=30)
        client.login(user, self._passwords[user])
        return client

    def env(self, user: str) -> dict[str, str]:
        return {"IMAP_SERVER": f"{self.host}:{self.port}", "IMAP_USER": user,
                "IMAP_PASSWORD": self._passwords[user], "IMAP_TLS": "none"}
