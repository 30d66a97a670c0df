"""A user's first hour: --version on every command; every command's --help lists the
environment variables its man page's ENVIRONMENT section names, and no others; the
tests never see the user's IMAP_* settings."""

import os
import re
import subprocess
import sys

import pytest
from conftest import REPO

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
