"""Security of the connection: certificates checked, pinned or (loudly) not; no fall
back to plain text; the login mechanisms, against Dovecot (CRAM-MD5, and XOAUTH2 and
OAUTHBEARER through its oauth2 passdb) and, byte for byte, against the fake server.
Every failure is one line with its exit status.  Secrets and files: test_secrets.py."""

import hashlib
import hmac
import os
import re
import secrets
import socket
import ssl
import sys
import time
from pathlib import Path

import pytest
from dovecot import LAYOUTS
from fake_imap import CAPABILITIES, FakeIMAP
from plumbing import one_line, private_file, run

from imapstream import errors
from imapstream.commands import imap_list
from imapstream.imap import auth

ROOT = Path(__file__).resolve().parent.parent
BIN = os.path.dirname(sys.executable)



def use(monkeypatch, server, **extra):
    for key, value in dict(server.env(), **extra).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("IMAP_CAFILE", raising=False)


def logins(dovecot, user, count, wait=10):
    """The mechanisms of user's logins, from Dovecot's log, once there are count of them
    or wait seconds have passed.  The first is the account fixture's (PLAIN)."""
    deadline = time.monotonic() + wait
    while True:
        found = re.findall(rf"Login: user=<{user}>, method=([A-Z0-9-]+)", dovecot.log.read_text())
        if len(found) >= count or time.monotonic() > deadline:
            return found



# -- TLS ----------------------------------------------------------------------------------


@pytest.fixture
def imaps(dovecot, account, monkeypatch):
    """IMAPS to Dovecot with no CA given: only --fingerprint or --insecure get through."""
    monkeypatch.setenv("IMAP_SERVER", f"{dovecot.host}:{dovecot.ssl_port}")
    monkeypatch.setenv("IMAP_TLS", "imaps")
    monkeypatch.delenv("IMAP_CAFILE")
    der = ssl.PEM_cert_to_DER_cert(dovecot.cafile.read_text())
    return hashlib.sha256(der).hexdigest()


def test_a_pinned_certificate_needs_no_ca_and_no_matching_name(dovecot, imaps, monkeypatch,
                                                               capsys):
    colons = ":".join(imaps[i:i + 2] for i in range(0, 64, 2)).upper()
    for pin in (imaps, colons, f"{'0' * 64}, {colons}"):
        assert run(imap_list, ["--fingerprint", pin])[0] == errors.OK
    monkeypatch.setenv("IMAP_FINGERPRINT", imaps)
    assert run(imap_list, ["--tls", "starttls", "-s", f"{dovecot.host}:{dovecot.port}"])[0] == 0
    assert capsys.readouterr().err == ""
    # 127.1 is 127.0.0.1 under a name the certificate does not hold: the CA check refuses
    # it, the pin does not look at names.
    monkeypatch.setenv("IMAP_SERVER", f"127.1:{dovecot.ssl_port}")
    assert run(imap_list, [])[0] == errors.OK
    monkeypatch.delenv("IMAP_FINGERPRINT")
    assert run(imap_list, ["--cafile", str(dovecot.cafile)])[0] == errors.UNAVAILABLE
    assert "imap-list: the certificate of 127.1 is not trusted: " in one_line(capsys)


def test_a_certificate_that_does_not_match_the_pin_is_refused(dovecot, imaps, capsys):
    user = os.environ["IMAP_USER"]
    for server, tls in ((dovecot.ssl_port, "imaps"), (dovecot.port, "starttls")):
        argv = ["-s", f"{dovecot.host}:{server}", "--tls", tls, "--fingerprint", "ab" * 32]
        assert run(imap_list, argv)[0] == errors.UNAVAILABLE
        err = one_line(capsys)
        assert "does not match --fingerprint: its SHA-256 is " in err
        assert imaps[:8].upper() in err.replace(":", "")
    assert logins(dovecot, user, 2, wait=1) == ["PLAIN"]


def test_bad_fingerprint_options(imaps, capsys):
    for argv, words in ((["--fingerprint", "ab:cd"], "64 hex digits"),
                        (["--fingerprint", imaps, "--insecure"], "contradict"),
                        (["--fingerprint", imaps, "--tls", "none"], "needs TLS")):
        assert run(imap_list, argv)[0] == errors.USAGE
        assert words in one_line(capsys)


@pytest.mark.parametrize("tls", ["imaps", "starttls"])
def test_untrusted_certificate_names_the_way_out_and_insecure_warns(dovecot, imaps, tls,
                                                                     monkeypatch, capsys):
    if tls == "starttls":
        monkeypatch.setenv("IMAP_SERVER", f"127.0.0.1:{dovecot.port}")
        monkeypatch.setenv("IMAP_TLS", "starttls")
    assert run(imap_list, [])[0] == errors.UNAVAILABLE
    err = one_line(capsys)
    assert "not trusted" in err and "--cafile FILE" in err and "--fingerprint SHA256" in err
    der = ssl.PEM_cert_to_DER_cert(dovecot.cafile.read_text())
    digest = ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
    expires = dovecot.ssl_context().get_ca_certs()[0]["notAfter"]
    assert f"(it shows SHA-256 {digest}, subject CN=localhost, expires {expires});" in err
    assert run(imap_list, ["--fingerprint", digest])[0] == errors.OK  # the form it takes
    assert run(imap_list, ["--insecure"])[0] == errors.OK
    assert "imap-list: WARNING: --insecure: the certificate of 127.0.0.1 is not checked" in \
        one_line(capsys)


def test_tls_none_warns_unless_the_server_is_on_loopback(monkeypatch, capsys, outward):
    with FakeIMAP() as server:
        use(monkeypatch, server)
        assert run(imap_list, [])[0] == errors.OK
        assert capsys.readouterr().err == ""
    address = outward
    with FakeIMAP(host=address) as server:
        use(monkeypatch, server)
        assert run(imap_list, [])[0] == errors.OK
        assert f"warning: --tls none: the mail and the login cross the network to {address} " \
               f"unencrypted" in one_line(capsys)


def test_starttls_never_falls_back_to_plain_text(monkeypatch, capsys):
    without = tuple(c for c in CAPABILITIES if c != "STARTTLS")
    for capabilities, words in ((without, "does not offer STARTTLS; refusing to log in"),
                                (CAPABILITIES, "127.0.0.1 refused STARTTLS")):
        with FakeIMAP(capabilities=capabilities) as server:
            use(monkeypatch, server, IMAP_TLS="starttls")
            assert run(imap_list, [])[0] == errors.UNAVAILABLE
            assert words in one_line(capsys)
        assert not [c for c in server.commands if b"LOGIN" in c or b"AUTHENTICATE" in c]


# -- authentication -----------------------------------------------------------------------


def test_the_mechanism_follows_the_capabilities():
    dovecot = [b"IMAP4REV1", b"AUTH=PLAIN", b"AUTH=LOGIN", b"AUTH=CRAM-MD5",
               b"AUTH=XOAUTH2", b"AUTH=OAUTHBEARER"]
    assert auth.choose(dovecot, True, None, False, "h") == "plain"
    assert auth.choose(dovecot, False, None, False, "h") == "cram-md5"
    assert auth.choose(dovecot, True, None, True, "h") == "oauthbearer"
    assert auth.choose([b"IMAP4REV1"], True, None, False, "h") == "login"
    assert auth.choose([b"AUTH=XOAUTH2"], True, None, True, "h") == "xoauth2"
    assert auth.choose(dovecot, True, "cram-md5", False, "h") == "cram-md5"
    with pytest.raises(errors.CommandError, match="offers no way to log in with a password "
                                               "without TLS .*; it offers no mechanism"):
        auth.choose([b"IMAP4REV1", b"LOGINDISABLED"], False, None, False, "h")
    with pytest.raises(errors.CommandError, match="--auth cram-md5: h does not offer it; "
                                               "it offers LOGIN PLAIN"):
        auth.choose([b"AUTH=PLAIN"], True, "cram-md5", False, "h")


def test_dovecot_sees_plain_over_tls_and_cram_md5_without(dovecot, account, monkeypatch,
                                                         capsys):
    user = os.environ["IMAP_USER"]
    assert run(imap_list, [])[0] == errors.OK  # STARTTLS
    assert run(imap_list, ["--auth", "cram-md5"])[0] == errors.OK
    monkeypatch.setenv("IMAP_TLS", "none")
    assert run(imap_list, [])[0] == errors.OK
    assert run(imap_list, ["--auth", "login"])[0] == errors.OK  # Dovecot logs LOGIN as PLAIN
    assert logins(dovecot, user, 5) == ["PLAIN", "PLAIN", "CRAM-MD5", "CRAM-MD5", "PLAIN"]
    monkeypatch.setenv("IMAP_PASSWORD", "not-the-Secret-17")
    assert run(imap_list, [])[0] == errors.NOPERM
    err = one_line(capsys)
    assert f"imap-list: login as {user} on 127.0.0.1 failed: [AUTHENTICATIONFAILED] " in err
    assert "not-the-Secret-17" not in err


def test_a_password_beyond_ascii(dovecot, monkeypatch, capsys):
    user, password = f"umlaut-{secrets.token_hex(3)}", "Grüße-€-42"
    dovecot.add_user(user, password, LAYOUTS["fs"])
    for key, value in dict(dovecot.env(user), IMAP_PASSWORD=password).items():
        monkeypatch.setenv(key, value)
    assert run(imap_list, [])[0] == errors.OK
    assert run(imap_list, ["--auth", "cram-md5"])[0] == errors.OK
    assert run(imap_list, ["--auth", "login"])[0] == errors.USAGE
    assert "carries only ASCII user names and passwords; use --auth plain" in one_line(capsys)


def test_oauth2_against_dovecot(dovecot, account, monkeypatch, tmp_path, capsys):
    user = os.environ["IMAP_USER"]
    monkeypatch.delenv("IMAP_PASSWORD")
    token = private_file(tmp_path / "token", dovecot.oauth2_token(user) + "\n")
    command = ["--oauth2-token-command", f"cat {token}"]
    assert run(imap_list, command)[0] == errors.OK
    assert run(imap_list, [*command, "--auth", "xoauth2"])[0] == errors.OK
    assert logins(dovecot, user, 3) == ["PLAIN", "OAUTHBEARER", "XOAUTH2"]
    stranger = dovecot.oauth2_token("somebody-else")
    token.write_text(stranger)
    for mechanism in ("oauthbearer", "xoauth2"):
        assert run(imap_list, [*command, "--auth", mechanism])[0] == errors.NOPERM
        err = one_line(capsys)
        assert f"login as {user} on 127.0.0.1 failed: " in err and stranger not in err


def test_sasl_exchanges_byte_for_byte(monkeypatch, tmp_path, capsys):
    token = "ya29.a0AfB_byC-token"
    token_file = private_file(tmp_path / "token", token + "\n")
    command = ["--oauth2-token-command", f"cat {token_file}"]
    with FakeIMAP(tokens={"alice": token}) as server:
        use(monkeypatch, server)
        for argv in (["--auth", "plain"], ["--auth", "cram-md5"], [*command, "--auth", "xoauth2"],
                     [*command, "--auth", "oauthbearer"]):
            assert run(imap_list, argv)[0] == errors.OK
        server.tokens["alice"] = "a-newer-token"
        for mechanism in ("xoauth2", "oauthbearer"):
            assert run(imap_list, [*command, "--auth", mechanism])[0] == errors.NOPERM
            err = one_line(capsys)
            assert "login as alice on 127.0.0.1 failed: [AUTHENTICATIONFAILED] Authentication " \
                   'failed. ({"status":"invalid_token","schemes":"bearer"})' in err
    challenge = b"<1896.697170952@fake.example>"
    bearer = b"auth=Bearer " + token.encode() + b"\1\1"
    oauthbearer = b"n,a=alice,\1host=127.0.0.1\1port=%d\1" % server.port + bearer
    assert server.exchanges == [
        ["PLAIN", [b"\0alice\0Fake-pass-13"]],
        ["CRAM-MD5", [b"alice " + hmac.new(b"Fake-pass-13", challenge, "md5").hexdigest()
                      .encode()]],
        ["XOAUTH2", [b"user=alice\1" + bearer]],
        ["OAUTHBEARER", [oauthbearer]],
        ["XOAUTH2", [b"user=alice\1" + bearer, b""]],  # an empty answer to the error report
        ["OAUTHBEARER", [oauthbearer, b"\1"]],  # RFC 7628: a lone ^A
    ]


def test_mechanism_and_token_command_mistakes(monkeypatch, tmp_path, capfd):
    with FakeIMAP(capabilities=("IMAP4rev1", "AUTH=PLAIN")) as server:
        use(monkeypatch, server)
        failing = private_file(tmp_path / "fail", "echo no token today >&2; exit 3")
        for argv, status, words in (
                (["--auth", "cram-md5"], errors.NOPERM,
                 "--auth cram-md5: 127.0.0.1 does not offer it; it offers LOGIN PLAIN"),
                (["--auth", "xoauth2"], errors.USAGE,
                 "--auth xoauth2 needs --oauth2-token-command"),
                (["--auth", "plain", "--oauth2-token-command", "true"], errors.USAGE,
                 "--auth plain takes a password"),
                (["--oauth2-token-command", "true"], errors.NOPERM, "printed no token"),
                (["--oauth2-token-command", "no-such-helper --x"], errors.USAGE,
                 "cannot run no-such-helper: No such file or directory"),
                (["--oauth2-token-command", "echo a-token-for-nobody"], errors.NOPERM,
                 "offers neither OAUTHBEARER nor XOAUTH2")):
            assert run(imap_list, argv)[0] == status
            assert words in one_line(capfd)
        assert run(imap_list, ["--oauth2-token-command", f"sh {failing}"])[0] == errors.NOPERM
        assert capfd.readouterr().err == ("no token today\nimap-list: --oauth2-token-command "
                                           "exited with status 3\n")


# -- errors a person can act on -----------------------------------------------------------


def test_each_failure_to_connect_is_one_line(monkeypatch, capsys):
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    with FakeIMAP(greeting=None) as silent, FakeIMAP() as fake:
        use(monkeypatch, fake)
        cases = (
            (["-s", "no-such-host.invalid:143"], errors.UNAVAILABLE,
             "imap-list: cannot resolve no-such-host.invalid: "),
            (["-s", f"127.0.0.1:{closed_port}"], errors.UNAVAILABLE,
             f"imap-list: 127.0.0.1 port {closed_port} refused the connection"),
            (["-s", f"127.0.0.1:{silent.port}", "-t", "1"], errors.TEMPFAIL,
             "imap-list: timed out waiting for the server"),
            (["-s", f"127.0.0.1:{silent.port}", "-t", "1", "--tls", "imaps"], errors.TEMPFAIL,
             f"imap-list: timed out connecting to 127.0.0.1 port {silent.port}"),
            (["--tls", "imaps"], errors.UNAVAILABLE,
             f"imap-list: 127.0.0.1 port {fake.port} does not speak TLS; for STARTTLS give"),
            (["-u", "alice", "--auth", "plain"], errors.NOPERM, "imap-list: login as alice on "
             "127.0.0.1 failed: [AUTHENTICATIONFAILED] Authentication failed."))
        monkeypatch.setenv("IMAP_PASSWORD", "wrong")
        for argv, status, start in cases:
            began = time.monotonic()
            assert run(imap_list, argv)[0] == status
            assert one_line(capsys).startswith(start)
            assert time.monotonic() - began < 10
