"""The test Dovecot's ports: two test sessions may pick the same free port, and a
server must not take the other session's Dovecot for its own."""

import os
import shutil
import tempfile

import dovecot as dovecot_module
from dovecot import Dovecot


def test_a_port_another_dovecot_holds_is_left_for_others(dovecot, monkeypatch):
    """free_port() gives this session's ports, as it may in a second session: the new
    server's master cannot bind them, the greeting there is not its own, so it starts
    on other ports, where its users log in."""
    taken = iter([dovecot.port, dovecot.ssl_port])
    free_port = dovecot_module.free_port
    monkeypatch.setattr(dovecot_module, "free_port", lambda: next(taken, None) or free_port())
    directory = tempfile.mkdtemp(prefix="imapstream-dovecot-")
    os.chmod(directory, 0o755)
    other = Dovecot(directory)
    try:
        other.start()
        assert {other.port, other.ssl_port}.isdisjoint({dovecot.port, dovecot.ssl_port})
        user, _ = other.new_user("fs")
        with other.client(user) as client:
            assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == 0
    finally:
        other.stop()
        shutil.rmtree(directory, ignore_errors=True)
