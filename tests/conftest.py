"""Shared fixtures: one real Dovecot server per test session.

Fixtures:
  dovecot   session-scoped running ``dovecot.Dovecot`` (users alice/bob/carol)
  new_user  factory: ``new_user(layout="fs"|"maildir++"|"mbox") -> (name, password)``
  imap_user a fresh "fs" user, ``(name, password)``
Helper:
  env_for(dovecot, user) -> IMAP_* environment variables for the plumbing commands
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

import pytest
from dovecot import Dovecot, DovecotError


def env_for(server: Dovecot, user: str) -> dict[str, str]:
    return server.env(user)


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
            _unavailable("dovecot/doveadm not installed (apt-get install dovecot-imapd)")
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
def program():
    """``program(name)``: the path of an external program a test runs, such as jq or
    bzcat; the test is skipped when it is missing (fails with CI=true)."""

    def find(name: str) -> str:
        path = shutil.which(name)
        if path is None:
            _unavailable(f"{name} is not installed")
        return path

    return find
