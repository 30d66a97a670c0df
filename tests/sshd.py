"""Throwaway ssh hosts for tests: ``SshHosts(directory, names, path)`` starts one Debian
sshd per name on a free 127.0.0.1 port (``sshd -f config -D -e``), each with a host key
of its own, letting in the current user with one throwaway key.  Each acts as a host:
a command run there starts in the host's own directory (``root(name)``, as a login
starts in its home) with ``path`` first on PATH (where the host has imapstream
installed).  ``ssh_command`` is the ssh command line (``-F`` a config naming the hosts)
for GNU parallel's PARALLEL_SSH."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from dovecot import free_port

SSHD = "/usr/sbin/sshd"


def available():
    return os.path.exists(SSHD) and shutil.which("ssh") and shutil.which("ssh-keygen")


class SshHosts:
    def __init__(self, directory: Path, names: list[str], path: str):
        self.dir, self.names, self.path = Path(directory), names, path
        self.processes: list[subprocess.Popen] = []
        self.config = self.dir / "ssh_config"

    @property
    def ssh_command(self) -> str:
        return f"ssh -F {self.config}"

    def root(self, name: str) -> Path:
        return self.dir / name / "home"

    def start(self) -> SshHosts:
        key = self.dir / "user_key"
        _keygen(key)
        (self.dir / "authorized_keys").write_text(key.with_suffix(".pub").read_text())
        if os.geteuid() == 0:  # sshd's privilege separation directory
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        client = [f"Host *\n  User {_user()}\n  IdentityFile {key}\n  IdentitiesOnly yes\n"
                  "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"
                  "  BatchMode yes\n  LogLevel ERROR\n"]
        for name in self.names:
            port = self._start_host(name)
            client.append(f"Host {name}\n  HostName 127.0.0.1\n  Port {port}\n")
        # ssh takes the first value of each setting: the hosts before "Host *".
        self.config.write_text("".join(client[1:] + client[:1]))
        return self

    def _start_host(self, name: str) -> int:
        home = self.root(name)
        home.mkdir(parents=True)
        host_key = self.dir / name / "host_key"
        _keygen(host_key)
        for _attempt in range(3):
            port = free_port()
            config = self.dir / name / "sshd_config"
            config.write_text(
                f"ListenAddress 127.0.0.1:{port}\nHostKey {host_key}\nPidFile none\n"
                f"AuthorizedKeysFile {self.dir / 'authorized_keys'}\n"
                "PubkeyAuthentication yes\nPasswordAuthentication no\n"
                "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
                "PermitRootLogin prohibit-password\nAcceptEnv none\n"
                f"SetEnv PATH={self.path}:/usr/local/bin:/usr/bin:/bin\n"
                f'ForceCommand cd {home} && eval "$SSH_ORIGINAL_COMMAND"\n')
            process = subprocess.Popen([SSHD, "-f", str(config), "-D", "-e"],
                                       stdout=subprocess.DEVNULL,
                                       stderr=open(self.dir / name / "sshd.log", "ab"))
            if _listening(port, process):
                self.processes.append(process)
                return port
            process.kill()
            process.wait()
        raise RuntimeError(f"sshd for {name} did not start: {self.dir / name / 'sshd.log'}")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
            process.wait(timeout=10)
        self.processes.clear()


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                   check=True, stdout=subprocess.DEVNULL)


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def _listening(port: int, process: subprocess.Popen, seconds: float = 20) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end and process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                return sock.recv(4).startswith(b"SSH-")
        except OSError:
            time.sleep(0.05)
    return False
