"""What a command imports to start (bench/ measures how long that takes): no command
imports importlib.metadata, those that never talk IMAP import neither imapclient nor
ssl, and imapclient gets its version from its METADATA file (imapstream.imap)."""

import os
import subprocess
import sys

import pytest

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
