"""What a command imports to start (bench/ measures how long that takes): no command
imports importlib.metadata, those that never talk IMAP import neither imapclient nor
ssl, imapclient gets its version from its METADATA file (imapstream.imap), and
imapbackup starts the commands after imap-list at a lower CPU priority."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

IMAPBACKUP = Path(__file__).resolve().parents[1] / "bin" / "imapbackup"

IMAP_COMMANDS = ["imap_list", "imap_fetch", "imap_append"]
MBOX_COMMANDS = ["mbox_ids", "mbox_merge", "imapbackup_accounts"]


def imported(code, path=()):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)} if path else None
    shown = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\nprint(*sys.modules)"],
                           capture_output=True, text=True, check=True, env=env)
    return shown.stdout.split()


@pytest.mark.parametrize("command", IMAP_COMMANDS + MBOX_COMMANDS)
def test_no_command_imports_importlib_metadata(command):
    modules = imported(f"import imapstream.commands.{command}")
    assert f"imapstream.commands.{command}" in modules
    assert "importlib.metadata" not in modules


@pytest.mark.parametrize("command", MBOX_COMMANDS)
def test_commands_that_never_talk_imap_import_neither_imapclient_nor_ssl(command):
    modules = imported(f"import imapstream.commands.{command}")
    assert not {"imapclient", "ssl", "imaplib"} & set(modules)


def test_imapclient_has_its_own_version_without_importlib_metadata():
    modules = imported("import imapstream.imap, imapclient, imapclient.version as v\n"
                       "assert not hasattr(v, '__file__')")
    assert "importlib.metadata" not in modules
    shown = subprocess.run([sys.executable, "-c", (
        "import imapstream.imap, imapclient, importlib.metadata as m\n"
        "print(imapclient.__version__, m.version('imapclient'))\n"
        "print(imapclient.version_info)")], capture_output=True, text=True, check=True)
    versions, info = shown.stdout.splitlines()
    ours, metadata = versions.split()
    assert ours == metadata
    major, minor, micro = metadata.split(".")
    assert info == f"({major}, {minor}, {micro}, 'final')"


def test_imapclient_without_a_dist_info_beside_it_finds_its_version_itself(tmp_path):
    import imapclient
    os.symlink(os.path.dirname(imapclient.__file__), tmp_path / "imapclient")
    modules = imported("import imapstream.imap, imapclient, importlib.metadata as m\n"
                       "assert imapclient.version.__file__.endswith('version.py')\n"
                       "assert imapclient.__version__ == m.version('imapclient')",
                       path=[str(tmp_path)])
    assert "importlib.metadata" in modules


def test_imap_fetch_with_no_message_to_fetch_never_imports_imapclient():
    modules = imported("import io, imapstream.commands.imap_fetch as command\n"
                       "assert command.main(['-s', '127.0.0.1:9'], io.BytesIO(b''),"
                       " io.BytesIO()) == 0")
    assert not {"imapclient", "ssl", "imaplib", "imapstream.imap.store"} & set(modules)


@pytest.mark.parametrize("option", ["--password-file", "-p@", "--password-command", None])
def test_imapbackup_asks_imap_list_where_the_password_comes_from_only_when_no_option_says(
        sample_account, tmp_path, option):
    """imap-list --login-source (a Python start) only tells imapbackup whether to ask for
    the password: a password file or command is never the terminal.  imap-list runs
    through a wrapper that notes its arguments."""
    calls, wrapper = tmp_path / "calls", tmp_path / "bin" / "imap-list"
    wrapper.parent.mkdir()
    real = Path(sys.executable).parent / "imap-list"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >>{calls}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    env = dict(sample_account, PATH=f"{wrapper.parent}{os.pathsep}{sample_account['PATH']}")
    secret = tmp_path / "secret"
    secret.write_text(env.pop("IMAP_PASSWORD") + "\n")
    secret.chmod(0o600)
    given = {"--password-file": ["--password-file", secret], "-p@": [f"-p@{secret}"],
             "--password-command": ["--password-command", f"cat {secret}"]}.get(option)
    if given is None:
        netrc = Path(env["HOME"], ".netrc")
        netrc.write_text(f"machine 127.0.0.1 login {env['IMAP_USER']} password "
                         f"{secret.read_text()}")
        netrc.chmod(0o600)
    done = subprocess.run([str(IMAPBACKUP), "-d", tmp_path / "backup", "-f", "Drafts",
                           *(given or [])], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, start_new_session=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    asked = [line for line in calls.read_text().splitlines() if "--login-source" in line]
    assert len(asked) == (0 if given else 1)
    assert (tmp_path / "backup" / "Drafts.mbox").exists()


def test_imapbackup_runs_the_commands_after_imap_list_at_a_lower_priority(sample_account,
                                                                           tmp_path):
    """imap-list at the run's own CPU priority, mbox-ids, imap-fetch and mbox-merge at 10
    below it (nice 10), so that their start-up does not hold back the listing.  Each
    command runs through a wrapper that notes its niceness."""
    notes = tmp_path / "niceness"
    notes.mkdir()
    wrappers = tmp_path / "bin"
    wrappers.mkdir()
    for command in ("imap-list", "mbox-ids", "imap-fetch", "mbox-merge"):
        real = Path(sys.executable).parent / command
        wrapper = wrappers / command
        wrapper.write_text(f'#!/bin/sh\nnice >{notes / command}\nexec {real} "$@"\n')
        wrapper.chmod(0o755)
    env = dict(sample_account, PATH=f"{wrappers}{os.pathsep}{sample_account['PATH']}")
    done = subprocess.run([str(IMAPBACKUP), "-d", tmp_path / "backup", "-f", "Drafts"],
                          env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    own = os.nice(0)
    niceness = {path.name: int(path.read_text()) for path in notes.iterdir()}
    assert niceness == {"imap-list": own, "mbox-ids": min(own + 10, 19),
                        "imap-fetch": min(own + 10, 19), "mbox-merge": min(own + 10, 19)}
