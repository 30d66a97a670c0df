"""Shared fixtures: one real Dovecot server per test session.

Fixtures:
  dovecot   session-scoped running ``dovecot.Dovecot`` (users alice/bob/carol)
  new_user  factory: ``new_user(layout="fs"|"maildir++"|"mbox") -> (name, password)``
  imap_user a fresh "fs" user, ``(name, password)``
  sample_account  module-scoped: a user holding the sample mail, as command_env gives it
Helper:
  command_env(dovecot, user, home=None) -> the environment to run bin/imapbackup and the
  installed commands against the user: IMAP_* set, bin/ and the venv first on PATH
"""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import pytest
import sample_mail
from dovecot import Dovecot, DovecotError, outward_address

REPO = Path(__file__).resolve().parent.parent

# The tests never see the mail settings of the shell that runs them: each test sets the
# IMAP_* variables it wants (command_env, the account fixture, monkeypatch).
for _name in [name for name in os.environ if name.startswith("IMAP_")]:
    del os.environ[_name]

# A suite started in the background of a shell without job control (`make test &`)
# inherits SIGINT ignored, and so would every command it starts: the tests that send
# ^C to them need it back, as at a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def command_env(server: Dovecot, user: str, home: Path | None = None) -> dict[str, str]:
    """os.environ with the user's IMAP_* variables, bin/ and this venv's scripts first on
    PATH, and HOME (where ~/.netrc would be) moved to home if given."""
    env = dict(os.environ, **server.env(user))
    env["PATH"] = os.pathsep.join([str(REPO / "bin"), os.path.dirname(sys.executable),
                                   env["PATH"]])
    if home is not None:
        env["HOME"] = str(home)
    return env


def pytest_terminal_summary(terminalreporter):
    """Skipped tests are not passed tests: say loudly how many and why."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons = collections.Counter(
        report.longrepr[2].removeprefix("Skipped: ") if isinstance(report.longrepr, tuple)
        else str(report.longrepr) for report in skipped)
    terminalreporter.section(f"{len(skipped)} TESTS SKIPPED, NOT PASSED", sep="!", red=True,
                             bold=True)
    for reason, count in reasons.most_common():
        terminalreporter.write_line(f"{count:5} skipped: {reason}", red=True, bold=True)


def _unavailable(message: str) -> None:
    # In CI a missing server must fail loudly instead of silently skipping tests.
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: refusing to skip)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def dovecot(tmp_path_factory):
    # Not below pytest's 0700 tmp dirs: as root the mail processes run as
    # nobody and must traverse the whole path; unix socket paths are also
    # limited to ~108 bytes.
    directory = tempfile.mkdtemp(prefix="imapstream-dovecot-")
    os.chmod(directory, 0o755)
    server = Dovecot(directory)
    try:
        if not server.available:
            _unavailable("dovecot, doveadm or /usr/lib/dovecot/imap not installed "
                         "(apt-get install dovecot-imapd)")
        try:
            server.start()
        except (DovecotError, OSError) as exc:
            _unavailable(f"could not start dovecot: {exc}")
        yield server
    finally:
        server.stop()
        with contextlib.suppress(OSError):
            shutil.copy(server.log, tmp_path_factory.getbasetemp() / "dovecot.log")
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def new_user(dovecot):
    return dovecot.new_user


@pytest.fixture(scope="module")
def sample_account(dovecot, tmp_path_factory):
    """A user with the sample mail: the environment for commands that back it up."""
    user, _password = dovecot.new_user("fs")
    with dovecot.client(user) as client:
        sample_mail.append_sample_mail(client)
    return command_env(dovecot, user, tmp_path_factory.mktemp("home"))


@pytest.fixture
def imap_user(dovecot):
    return dovecot.new_user("fs")


@pytest.fixture
def account(dovecot, new_user, monkeypatch, request):
    """A fresh user (layout "fs", or the test's indirect parameter) whose IMAP_* variables
    are set for the commands run in-process; yields a logged-in client for setting up."""
    user, _password = new_user(getattr(request, "param", "fs"))
    for key, value in dovecot.env(user).items():
        monkeypatch.setenv(key, value)
    client = dovecot.client(user)
    yield client
    client.logout()


@pytest.fixture
def outward():
    """An address of this machine that is not loopback: a server there stands for one
    across a network (the test is skipped on a machine without one)."""
    address = outward_address()
    if address is None:
        pytest.skip("this machine has no address but loopback")
    return address


@pytest.fixture
def program():
    """``program(name)``: the path of an external program a test runs, such as jq or
    bzcat; the test is skipped when it is missing (fails with CI=true)."""

    def find(name: str) -> str:
        path = shutil.which(name)
        if path is None:
            _unavailable(f"{name} is not installed")
        return path

    return find
