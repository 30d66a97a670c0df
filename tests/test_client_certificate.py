"""A TLS client certificate (--certfile/--keyfile; imapbackup's -c/-k), presented to a
Dovecot that requires one: ssl_verify_client_cert with its own CA, and
auth_ssl_require_client_cert, so a login without the certificate is refused."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import command_env
from dovecot import Dovecot

from imapstream import errors

REQUIRE_CERT = """
ssl_ca = <{ca}
ssl_verify_client_cert = yes
ssl_require_crl = no
auth_ssl_require_client_cert = yes
"""


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def client_certificate(directory):
    """A CA, and a client certificate it signed with its key in a file of its own."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=test client CA",
            "-days", "2", "-keyout", "ca.key", "-out", "ca.pem", cwd=directory)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=client", "-keyout",
            "client.key", "-out", "client.csr", cwd=directory)
    openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-out", "client.pem", cwd=directory)
    for name in ("client.key", "ca.key"):
        os.chmod(directory / name, 0o600)
    return directory / "client.pem", directory / "client.key"


@pytest.fixture(scope="session")
def strict_server(dovecot, tmp_path_factory):
    """A second Dovecot (the session's keeps its settings) that wants a client
    certificate; yields (server, certfile, keyfile, environment for its user)."""
    certs = tmp_path_factory.mktemp("certs")
    certfile, keyfile = client_certificate(certs)
    directory = tempfile.mkdtemp(prefix="imapstream-dovecot-cert-")
    os.chmod(directory, 0o755)
    shutil.copy(certs / "ca.pem", Path(directory) / "client-ca.pem")
    os.chmod(Path(directory) / "client-ca.pem", 0o644)
    server = Dovecot(directory, REQUIRE_CERT.format(ca=Path(directory) / "client-ca.pem"))
    try:
        server.start()
        user, _password = server.new_user("fs")
        env = command_env(server, user, tmp_path_factory.mktemp("home"))
        yield server, certfile, keyfile, env
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def imap_list(env, *argv):
    return subprocess.run(["imap-list", *argv], env=env, capture_output=True, timeout=60)


@pytest.mark.parametrize("tls", ["starttls", "imaps"])
def test_every_command_presents_the_client_certificate(strict_server, tls):
    server, certfile, keyfile, env = strict_server
    port = server.port if tls == "starttls" else server.ssl_port
    env = dict(env, IMAP_SERVER=f"127.0.0.1:{port}", IMAP_TLS=tls)
    refused = imap_list(env)
    assert refused.returncode == errors.NOPERM and b"certificate" in refused.stderr, refused.stderr
    listed = imap_list(env, "--certfile", str(certfile), "--keyfile", str(keyfile), "INBOX")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == b""  # the empty INBOX, listed after a login
    # imap-fetch and imap-append take the same options from the environment.
    env = dict(env, IMAP_CERTFILE=str(certfile), IMAP_KEYFILE=str(keyfile))
    appended = subprocess.run(["imap-append", "Kept"], env=env, capture_output=True,
                              input=b"From x Fri Jul  1 12:00:00 2005\nSubject: s\n\nbody\n",
                              timeout=60)
    assert appended.returncode == 0, appended.stderr
    listing = imap_list(env, "Kept")
    assert listing.returncode == 0 and listing.stdout.count(b"\n") == 1, listing.stderr
    fetched = subprocess.run(["imap-fetch", "--mbox"], input=listing.stdout, env=env,
                             capture_output=True, timeout=60)
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout.endswith(b"Subject: s\n\nbody\n\n")


def test_a_certificate_that_cannot_be_used_is_one_line(strict_server, tmp_path):
    _server, certfile, keyfile, env = strict_server
    cases = [
        (["--certfile", str(tmp_path / "none.pem")], "No such file"),
        (["--certfile", str(certfile)], "not a PEM certificate and key"),
        (["--certfile", str(keyfile), "--keyfile", str(keyfile)], "not a PEM"),
        (["--keyfile", str(keyfile)], "--keyfile is the key of --certfile"),
        (["--certfile", str(certfile), "--keyfile", str(keyfile), "--tls", "none"],
         "needs TLS"),
    ]
    for argv, reason in cases:
        done = imap_list(env, *argv)
        err = done.stderr.decode()
        assert done.returncode == errors.USAGE, (argv, err)
        assert err.count("\n") == 1 and err.startswith("imap-list: ") and reason in err, err
