"""A user's first hour: --version on every command; every command's --help lists the
environment variables its man page's ENVIRONMENT section names, and no others; the
tests never see the user's IMAP_* settings."""

import os
import re
import shutil
import signal
import subprocess
import sys

import pytest
from conftest import REPO, _unavailable

from imapstream import __version__

COMMANDS = ["imap-list", "imap-fetch", "imap-append", "mbox-ids", "mbox-merge", "imapbackup"]


def man_environment(command):
    """The variables under ENVIRONMENT in man/COMMAND.1 (.It Ev NAME, or NAME , Ev NAME)."""
    page = (REPO / "man" / f"{command}.1").read_text()
    section = page.split("\n.Sh ENVIRONMENT\n", 1)[1].split("\n.Sh ", 1)[0]
    return {name for line in section.splitlines() if line.startswith(".It Ev ")
            for name in re.findall(r"[A-Z][A-Z_]+", line[len(".It Ev "):])}


def help_environment(text):
    """The variables listed after "environment:" at the end of --help."""
    listed = text.rsplit("\nenvironment:", 1)[1]
    return set(re.findall(r"^  ([A-Z][A-Z_]+) ", listed, re.MULTILINE))


@pytest.fixture
def env():
    """bin/ and this venv's scripts first on PATH."""
    path = os.pathsep.join([str(REPO / "bin"), os.path.dirname(sys.executable),
                            os.environ["PATH"]])
    return dict(os.environ, PATH=path)


@pytest.mark.parametrize("command", COMMANDS)
def test_version_and_the_environment_in_help(command, env):
    version = subprocess.run([command, "--version"], env=env, capture_output=True, text=True,
                             timeout=30)
    assert (version.returncode, version.stdout, version.stderr) == (
        0, f"{command} {__version__}\n", "")
    shown = subprocess.run([command, "--help"], env=env, capture_output=True, text=True,
                           timeout=30)
    assert shown.returncode == 0 and "--version" in shown.stdout
    expected = man_environment(command)
    if expected:
        assert help_environment(shown.stdout) == expected
    else:
        assert shown.stdout.endswith("\nenvironment: none read\n")


def test_the_tests_never_see_the_users_mail_settings():
    """conftest drops IMAP_* from the environment before any test runs."""
    shell = dict(os.environ, IMAP_SERVER="mine.example:993", IMAP_PORT="143",
                 IMAP_PASSWORD="mine")
    seen = subprocess.run(
        [sys.executable, "-c", "import os, sys; sys.path[:0] = ['tests']; import conftest; "
         "print(sorted(k for k in os.environ if k.startswith('IMAP_')))"],
        cwd=REPO, env=shell, capture_output=True, text=True, timeout=60)
    assert (seen.returncode, seen.stdout) == (0, "[]\n"), seen.stderr


def _pythons():
    """The Pythons make install is tried with: python3 on PATH (pyenv's here), and
    Debian's /usr/bin/python3 when it is another one."""
    path = os.environ["PATH"].replace(os.path.dirname(sys.executable) + os.pathsep, "")
    found = {os.path.realpath(p) for p in (shutil.which("python3", path=path),
                                           "/usr/bin/python3") if p and os.path.exists(p)}
    return sorted(found)


@pytest.mark.parametrize("python", _pythons())
def test_make_install_gives_working_commands_and_man_pages(python, tmp_path, sample_account):
    """make install PREFIX=... DESTDIR=..., then the staged tree moved where PREFIX says
    (as a package would be unpacked): the installed commands run with nothing else on
    PATH, imapbackup finds the plumbing beside it, man -l reads the pages."""
    if subprocess.run([python, "-m", "pip", "--version"], capture_output=True).returncode:
        _unavailable(f"{python} has no pip (apt-get install python3-pip)")
    prefix, stage = tmp_path / "prefix", tmp_path / "stage"
    made = subprocess.run(["make", "-s", "install", f"PYTHON={python}", f"PREFIX={prefix}",
                           f"DESTDIR={stage}"], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert made.returncode == 0, made.stderr
    assert not prefix.exists()
    os.rename(stage / str(prefix).lstrip("/"), prefix)
    env = dict(sample_account, PATH="/usr/bin:/bin")
    for command in COMMANDS:
        shown = subprocess.run([prefix / "bin" / command, "--version"], env=env,
                               capture_output=True, text=True, timeout=60)
        assert shown.stdout == f"{command} {__version__}\n", shown.stderr
    page = subprocess.run(["man", "-l", prefix / "share/man/man1/imap-list.1"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert page.returncode == 0 and "imap-list" in page.stdout
    assert (prefix / "share/man/man7/imapstream.7").exists()
    backup = tmp_path / "backup"
    ran = subprocess.run([prefix / "bin/imapbackup", "-d", backup, "-f", "INBOX"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert (backup / "INBOX.mbox").stat().st_size > 0


def test_skipped_tests_are_counted_loudly_with_their_reasons(tmp_path):
    (tmp_path / "conftest.py").write_text(
        "import importlib.util, sys\n"
        f"sys.path.insert(0, {str(REPO / 'tests')!r})\n"
        f"spec = importlib.util.spec_from_file_location('repo_conftest', "
        f"{str(REPO / 'tests/conftest.py')!r})\n"
        "repo_conftest = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(repo_conftest)\n"
        "pytest_terminal_summary = repo_conftest.pytest_terminal_summary\n")
    (tmp_path / "test_probe.py").write_text(
        "import pytest\n"
        "def test_a(): pytest.skip('no dovecot here')\n"
        "def test_b(): pytest.skip('no dovecot here')\n"
        "def test_c(): pytest.skip('no jq')\n"
        "def test_d(): pass\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(tmp_path)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout
    assert "3 TESTS SKIPPED, NOT PASSED" in done.stdout
    assert "    2 skipped: no dovecot here\n    1 skipped: no jq\n" in done.stdout


def test_demo_server_prints_the_environment_and_runs_until_interrupted():
    server = subprocess.Popen([sys.executable, str(REPO / "tests/demo.py"), "--server"],
                              stdout=subprocess.PIPE, text=True, cwd=REPO,
                              start_new_session=True)
    try:
        lines = []
        while not lines or not lines[-1].startswith("Ctrl-C"):
            line = server.stdout.readline()
            assert line, f"the demo server ended early: {lines}"
            lines.append(line)
        script = "".join(line for line in lines if line.startswith("export "))
        listed = subprocess.run(["bash", "-c", script + "imap-list"], capture_output=True,
                                text=True, timeout=60, env={"PATH": os.environ["PATH"],
                                                            "HOME": os.environ["HOME"]})
        assert listed.returncode == 0, listed.stderr
        assert '"folder":"Personal/2005/Q3"' in listed.stdout
    finally:
        server.send_signal(signal.SIGINT)
        try:
            rest, _ = server.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)  # and its Dovecot: nothing outlives the test
            server.communicate()
            raise
    assert server.returncode == 0 and rest.endswith("demo server stopped\n")
