"""TLS contexts for the connections: verified against the system's CAs or --cafile,
pinned to certificate fingerprints (--fingerprint), or not checked (--insecure); a
client certificate where given; and the wrapper that resumes a TLS session of this
process on a reconnect."""

import hashlib
import hmac
import ssl

from ..errors import UNAVAILABLE, CommandError, UsageError


def parse_fingerprints(text):
    """SHA-256 digests from hex fingerprints (colons optional), separated by commas."""
    digests = set()
    for item in text.split(","):
        digits = item.strip().lower().replace(":", "")
        if len(digits) != 64 or any(c not in "0123456789abcdef" for c in digits):
            raise UsageError(f"--fingerprint wants the certificate's SHA-256 as 64 hex "
                             f"digits (colons allowed), not {item.strip()!r}")
        digests.add(bytes.fromhex(digits))
    return digests


def fingerprint(der):
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


class PinnedContext(ssl.SSLContext):
    """Trusts only certificates whose SHA-256 is pinned: no CA, no host name check (the
    pin is the stronger check), verified right after the handshake, before any byte of
    IMAP is read or sent over the TLS connection."""

    def wrap_socket(self, sock, *args, **kwargs):
        tls = super().wrap_socket(sock, *args, **kwargs)
        der = tls.getpeercert(binary_form=True) or b""
        digest = hashlib.sha256(der).digest()
        if not any(hmac.compare_digest(digest, pin) for pin in self.pins):
            tls.close()
            raise CommandError(f"the certificate of {kwargs.get('server_hostname')} does not "
                               f"match --fingerprint: its SHA-256 is {fingerprint(der)}; if "
                               f"it was renewed, check the new one and pin that", UNAVAILABLE)
        return tls


class Resuming:
    """An SSL context as imapclient and imaplib use it (wrap_socket with a server name),
    resuming session, a TLS session of this process, where the server still knows it:
    else the handshake is a full one, as without.  Python's ssl cannot carry a session
    to another process (an SSLSession has no serialised form), so imap-fetch's
    connection cannot resume imap-list's."""

    def __init__(self, context, session):
        self.context, self.session = context, session

    def wrap_socket(self, sock, server_hostname=None):
        return self.context.wrap_socket(sock, server_hostname=server_hostname,
                                        session=self.session)


def tls_context(cafile, fingerprints, insecure, certfile=None, keyfile=None):
    """The SSL context for a connection: pinned, unchecked (insecure) or verified
    against cafile or the system's CAs; presenting the client certificate in certfile
    (PEM, with its key there or in keyfile) if given."""
    if fingerprints:
        context = PinnedContext(ssl.PROTOCOL_TLS_CLIENT)
        context.pins = parse_fingerprints(fingerprints)
    else:
        try:
            context = ssl.create_default_context(cafile=cafile)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"--cafile {cafile}: {_load_error(exc)}") from None
    if fingerprints or insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if certfile:
        try:
            context.load_cert_chain(certfile, keyfile, password=_no_passphrase)
        except (OSError, ssl.SSLError) as exc:
            which = f"--certfile {certfile}" + (f" --keyfile {keyfile}" if keyfile else "")
            raise UsageError(f"{which}: {_load_error(exc)}") from None
    return context


def _no_passphrase():
    raise UsageError("the key of the client certificate is encrypted; give it without a "
                     "passphrase (openssl pkey -in KEY -out PLAIN.key), private to you")


def _load_error(exc):
    if isinstance(exc, ssl.SSLError):
        if exc.reason == "KEY_VALUES_MISMATCH":
            return "the key does not belong to the certificate"
        return f"not a PEM certificate and key ({exc.reason or exc})"
    return exc.strerror or str(exc)
