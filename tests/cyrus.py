"""A throwaway Cyrus IMAP (Debian's cyrus-imapd, unpacked by debs.py, not installed: it
conflicts with dovecot-imapd) on a free loopback port.

``Cyrus(directory, altnamespace)`` writes imapd.conf and cyrus.conf into directory and
``start()`` runs the unpacked ``master``, which runs ``imapd`` for each connection.
Users live in a sasldb (saslpasswd2 of sasl2-bin); a user's INBOX is created at its
first login (autocreate_quota).  The hierarchy delimiter is '/' (unixhierarchysep).
With altnamespace yes a user's folders are beside INBOX (A/B); with no they are below
it (INBOX/A/B), and CREATE A is refused.  Cyrus creates the parents of A/B/C as real
folders, and a later CREATE A answers a bare ``NO Mailbox already exists``.  As root
the services run as nobody (cyrus_user), so directory must be world-searchable.
"""

from __future__ import annotations

import itertools
import os
import pwd
import secrets
import signal
import subprocess
import time
from pathlib import Path

import imapclient
from debs import greets, library_path, unpacked
from dovecot import HOST, free_port

NAME = "cyrus"
PACKAGES = ["cyrus-imapd", "cyrus-common", "sasl2-bin"]
REALM = "localhost"


class CyrusError(RuntimeError):
    pass


class Cyrus:
    def __init__(self, directory: str | os.PathLike, altnamespace: bool = True):
        self.dir = Path(directory).resolve()
        self.altnamespace = altnamespace
        self.host, self.port = HOST, 0
        self.root: Path | None = None
        self.user = pwd.getpwnam("nobody") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
        self._passwords: dict[str, str] = {}
        self._counter = itertools.count(1)
        self._proc: subprocess.Popen | None = None

    def start(self) -> Cyrus:
        """Unpack (debs.Unavailable if impossible) and run the server (CyrusError)."""
        self.root = unpacked(NAME, PACKAGES)
        for sub in ("conf", "partition", "run"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
            os.chown(self.dir / sub, self.user.pw_uid, self.user.pw_gid)
        self.port = free_port()
        self._write_config()
        env = dict(os.environ, LD_LIBRARY_PATH=library_path(self.root),
                   SASL_PATH=f"{self.root}/usr/lib/x86_64-linux-gnu/sasl2:"
                             f"/usr/lib/x86_64-linux-gnu/sasl2")
        with open(self.log, "ab") as stderr:
            self._proc = subprocess.Popen(
                [self._program("master"), "-D", "-C", str(self.dir / "imapd.conf"),
                 "-M", str(self.dir / "cyrus.conf"), "-p", str(self.dir / "run/master.pid")],
                stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, env=env,
                start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise CyrusError(f"cyrus master exited with {self._proc.returncode}: "
                                 f"{self.log_tail()}")
            if greets(self.host, self.port):
                return self
            time.sleep(0.05)
        raise CyrusError(f"cyrus did not answer on port {self.port}: {self.log_tail()}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    @property
    def log(self) -> Path:
        return self.dir / "master.stderr"

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""

    def _program(self, name: str) -> str:
        return str(self.root / "usr/lib/cyrus/bin" / name)

    def _write_config(self) -> None:
        d = self.dir
        (d / "imapd.conf").write_text(f"""\
configdirectory: {d}/conf
defaultpartition: default
partition-default: {d}/partition
cyrus_user: {self.user.pw_name}
servername: {REALM}
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: {d}/sasldb2
sasl_mech_list: PLAIN LOGIN
allowplaintext: yes
autocreate_quota: 0
unixhierarchysep: yes
altnamespace: {"yes" if self.altnamespace else "no"}
idlesocket: {d}/run/idle
notifysocket: {d}/run/notify
lmtpsocket: {d}/run/lmtp
syslog_prefix: imapstream-cyrus
""")
        (d / "cyrus.conf").write_text(f"""\
START {{
  recover cmd="{self._program('ctl_cyrusdb')} -r -C {d}/imapd.conf"
}}
SERVICES {{
  imap cmd="{self._program('imapd')} -C {d}/imapd.conf" listen="{HOST}:{self.port}" prefork=0
}}
EVENTS {{
}}
""")

    def new_user(self) -> tuple[str, str]:
        """A fresh user c1, c2, ...: (name, password); its INBOX appears at first login."""
        name, password = f"c{next(self._counter)}", f"pw-{secrets.token_hex(6)}"
        sasldb = self.dir / "sasldb2"
        done = subprocess.run(
            [str(self.root / "usr/sbin/saslpasswd2"), "-p", "-c", "-f", str(sasldb),
             "-u", REALM, name], input=password.encode(), capture_output=True,
            env=dict(os.environ, LD_LIBRARY_PATH=library_path(self.root)))
        if done.returncode != 0:
            raise CyrusError(f"saslpasswd2: {done.stderr.decode(errors='replace')}")
        os.chown(sasldb, self.user.pw_uid, self.user.pw_gid)
        self._passwords[name] = password
        return name, password

    def folder(self, name: str) -> str:
        """The server's name of a personal folder given with '/' (A/B -> INBOX/A/B
        without altnamespace)."""
        return name if self.altnamespace or name.upper() == "INBOX" else f"INBOX/{name}"

    def client(self, user: str) -> imapclient.IMAPClient:
        client = imapclient.IMAPClient(self.host, port=self.port, ssl=False, timeout=30)
        client.login(user, self._passwords[user])
        return client

    def env(self, user: str) -> dict[str, str]:
        return {"IMAP_SERVER": f"{self.host}:{self.port}", "IMAP_USER": user,
                "IMAP_PASSWORD": self._passwords[user], "IMAP_TLS": "none"}
