"""COMPRESS=DEFLATE (RFC 4978) against a Dovecot that loads imap_zlib: the backup is the
same byte for byte with it, the conversation shows it (read through a recording proxy,
without TLS so that it can be read), --link-compression off and auto do what
imapstream(7) says."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import sample_mail
from conftest import command_env
from cutting_proxy import CuttingProxy
from dovecot import Dovecot, outward_address
from plumbing import backup_messages, server_messages

COMMAND = b" COMPRESS DEFLATE\r\n"


@pytest.fixture(scope="module")
def zlib_server(dovecot, tmp_path_factory):
    """A second Dovecot (the session's offers no COMPRESS) with the sample mail; yields
    (server, its user, the environment for the commands)."""
    directory = tempfile.mkdtemp(prefix="imapstream-dovecot-zlib-")
    os.chmod(directory, 0o755)
    server = Dovecot(directory, imap_zlib=True)
    try:
        server.start()
        user, _password = server.new_user("fs")
        with server.client(user) as client:
            assert b"COMPRESS=DEFLATE" in client.capabilities()
            sample_mail.append_sample_mail(client)
        yield server, user, command_env(server, user, tmp_path_factory.mktemp("home"))
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def via(proxy, env, host="127.0.0.1"):
    return dict(env, IMAP_SERVER=f"{host}:{proxy.port}", IMAP_TLS="none")


def imapbackup(env, directory, *options):
    done = subprocess.run(["imapbackup", "-d", str(directory), "--nospinner", *options],
                          env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def fetch(env, list_options=(), fetch_options=()):
    """imap-list --all | imap-fetch --mbox: the mboxrd bytes."""
    lister = subprocess.Popen(["imap-list", "--all", *list_options], env=env,
                              stdout=subprocess.PIPE)
    fetched = subprocess.run(["imap-fetch", "--mbox", *fetch_options], env=env,
                             stdin=lister.stdout, capture_output=True, timeout=120)
    lister.stdout.close()
    assert lister.wait(timeout=60) == 0 and fetched.returncode == 0, fetched.stderr
    return fetched.stdout


def files(directory):
    return {p.name: p.read_bytes() for p in Path(directory).iterdir() if p.suffix == ".mbox"}


def test_a_compressed_backup_is_the_same_byte_for_byte(zlib_server, tmp_path):
    server, user, env = zlib_server
    with CuttingProxy(server.port, cuts=0) as on:
        imapbackup(via(on, env), tmp_path / "on", "--link-compression", "on")
    with CuttingProxy(server.port, cuts=0) as off:
        imapbackup(via(off, env), tmp_path / "off", "--link-compression=off")
    # Both connections (imap-list's, imap-fetch's) deflate once logged in: after the
    # command, nothing of IMAP is readable either way.
    assert on.sent["up"].count(COMMAND) == 2
    for direction, plain in (("up", b"UID FETCH"), ("down", b"BODY[]")):
        assert plain not in on.sent[direction] and plain in off.sent[direction]
    assert COMMAND not in off.sent["up"]
    assert len(on.sent["down"]) < 0.8 * len(off.sent["down"])
    assert files(tmp_path / "on") == files(tmp_path / "off")
    with server.client(user) as client:
        held = {folder: items for folder, items in server_messages(client).items() if items}
    assert backup_messages(tmp_path / "on") == held
    # Restored through a compressed connection (APPEND's literals deflated): the same.
    other, _password = server.new_user("fs")
    restore_env = command_env(server, other, tmp_path)
    with CuttingProxy(server.port, cuts=0) as restore:
        done = subprocess.run(["imap-append", "-d", str(tmp_path / "on"),
                               "--link-compression", "on"], env=via(restore, restore_env),
                              capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert restore.sent["up"].count(COMMAND) == 1 and b"APPEND" not in restore.sent["up"]
    with server.client(other) as client:
        restored = {folder: items for folder, items in server_messages(client).items() if items}
    assert restored == held


def test_compress_over_tls(zlib_server):
    """IMAPS and STARTTLS, compressed inside TLS: the same bytes as without."""
    server, _user, env = zlib_server
    imaps = dict(env, IMAP_SERVER=f"{server.host}:{server.ssl_port}", IMAP_TLS="imaps")
    for tls_env in (env, imaps):
        on = ["--link-compression", "on"]
        assert fetch(tls_env, on, on) == fetch(tls_env, ["--link-compression", "off"])


def test_auto_compresses_the_messages_fetched_across_a_network(zlib_server):
    server, _user, env = zlib_server
    with CuttingProxy(server.port, cuts=0) as loopback:
        loopback_mbox = fetch(via(loopback, env))
    assert COMMAND not in loopback.sent["up"]  # loopback: no link to spare
    address = outward_address()
    if address is None:
        pytest.skip("no address of this machine other than loopback")
    with CuttingProxy(server.port, cuts=0, host=address) as network:
        assert fetch(via(network, env, address)) == loopback_mbox
    # imap-list (a listing: small answers) stays plain; imap-fetch deflates.
    assert network.sent["up"].count(COMMAND) == 1
    assert b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]" in network.sent["up"]
    assert b"BODY.PEEK[]" not in network.sent["up"]


def test_a_server_without_compress_is_used_as_it_is(dovecot, imap_user, tmp_path):
    user, _password = imap_user
    env = command_env(dovecot, user, tmp_path)
    with CuttingProxy(dovecot.port, cuts=0) as proxy:
        assert fetch(via(proxy, env), ["--link-compression", "on"],
                     ["--link-compression", "on"]) == b""
    assert COMMAND not in proxy.sent["up"]
    assert b" LIST " in proxy.sent["up"]
