"""Debian packages unpacked, not installed: for the servers whose packages conflict with
dovecot-imapd (Cyrus, Courier).  ``unpacked(name, packages)`` runs ``apt-get download``
and ``dpkg-deb -x`` into a cache directory (cache_root()/NAME) and returns
the unpacked root.  The library packages (lib*) they
depend on that dpkg does not list as installed are unpacked with them, recursively;
/lib is folded into /usr/lib (merged /usr), so that one LD_LIBRARY_PATH or one overlay
of /usr/lib finds every library.  A tree once unpacked is used as it is.

    python3 tests/debs.py   unpacks the trees of tests/cyrus.py and tests/courier.py
                            (make test-servers; .ci/run does it before the tests)
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

_DEPENDS = re.compile(r"^\s*\|?(?:Pre)?Depends: ([^<\s]\S*)$", re.M)


class Unavailable(RuntimeError):
    """The packages cannot be had here: no apt-get, no package lists, no network."""


def cache_root() -> Path:
    """IMAPSTREAM_DEB_CACHE, else (root) /var/tmp/imapstream-debs, which the servers'
    unprivileged processes can reach, else ~/.cache/imapstream-debs."""
    if os.environ.get("IMAPSTREAM_DEB_CACHE"):
        return Path(os.environ["IMAPSTREAM_DEB_CACHE"])
    if os.geteuid() == 0:
        return Path("/var/tmp/imapstream-debs")
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "imapstream-debs"


def unpacked(name: str, packages: list[str]) -> Path:
    """The unpacked tree of packages and their missing libraries, made if need be."""
    tree = cache_root() / name
    stamp = tree / "packages"
    if stamp.is_file() and stamp.read_text().split() == sorted(packages):
        return tree / "root"
    for tool in ("apt-get", "apt-cache", "dpkg-deb", "dpkg-query"):
        if shutil.which(tool) is None:
            raise Unavailable(f"{tool} not found (not Debian?)")
    tree.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=tree.parent))
    try:
        downloads = work / "debs"
        downloads.mkdir()
        os.chmod(work, 0o755)
        os.chmod(downloads, 0o777)  # apt-get downloads as _apt where it can
        _run(["apt-get", "download", *_closure(packages)], downloads)
        for deb in sorted(downloads.glob("*.deb")):
            _run(["dpkg-deb", "-x", str(deb), str(work / "root")], work)
        _merge_lib(work / "root")
        shutil.rmtree(downloads)
        (work / "packages").write_text("\n".join(sorted(packages)) + "\n")
        shutil.rmtree(tree, ignore_errors=True)
        work.rename(tree)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tree / "root"


def library_path(root: Path) -> str:
    """LD_LIBRARY_PATH for programs of the unpacked tree root."""
    return f"{root}/usr/lib/x86_64-linux-gnu:{root}/usr/lib"


def greets(host: str, port: int) -> bool:
    """Whether a server on host:port sends an IMAP greeting."""
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            return sock.makefile("rb").readline().startswith(b"* OK")
    except OSError:
        return False


def _closure(packages: list[str]) -> list[str]:
    """packages and every lib* package they need, directly or not, that is not installed."""
    wanted, level = set(packages), list(packages)
    while level:
        shown = _run(["apt-cache", "depends", "--no-recommends", "--no-suggests",
                      "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances",
                      *level], None)
        libraries = {n.split(":")[0] for n in _DEPENDS.findall(shown)
                     if n.startswith("lib")} - wanted
        level = sorted(libraries - _installed(libraries))
        wanted.update(level)
    return sorted(wanted)


def _installed(names: set[str]) -> set[str]:
    if not names:
        return set()
    listed = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n",
                             *sorted(names)], capture_output=True, text=True).stdout
    return {line.split()[0] for line in listed.splitlines() if line.split()[1:2] == ["ii"]}


def _merge_lib(root: Path) -> None:
    lib = root / "lib"
    if lib.is_dir() and not lib.is_symlink():
        shutil.copytree(lib, root / "usr" / "lib", symlinks=True, dirs_exist_ok=True)
        shutil.rmtree(lib)


def _run(argv: list[str], cwd: Path | None) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise Unavailable(f"{' '.join(argv[:3])} ... failed: "
                          f"{done.stderr.strip().splitlines()[-1:] or done.returncode}")
    return done.stdout


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    import courier
    import cyrus

    for module in (cyrus, courier):
        try:
            print(unpacked(module.NAME, module.PACKAGES))
        except Unavailable as exc:
            sys.exit(f"tests/debs.py: {module.NAME}: {exc}")
