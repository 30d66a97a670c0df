"""What a server's certificate says, for the error that refuses an untrusted one: its
SHA-256 fingerprint (the form --fingerprint takes), subject and expiry, read over a
connection of its own that checks nothing and logs in to nothing."""

import contextlib
import ssl

from .tls import fingerprint
from .transport import Client


def describe(der):
    """ "SHA-256 AB:..., subject CN=..., expires ..." for a certificate in DER form; the
    fingerprint in the form --fingerprint takes."""
    text = f"SHA-256 {fingerprint(der)}"
    decoded = _decoded(der)
    if decoded:
        subject = ", ".join(f"{_SHORT.get(k, k)}={v}" for rdn in decoded.get("subject", ())
                            for k, v in rdn)
        text += f", subject {subject or '(empty)'}, expires {decoded.get('notAfter', '?')}"
    return text


_SHORT = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
          "countryName": "C", "localityName": "L", "stateOrProvinceName": "ST"}


def _decoded(der):
    """The certificate as ssl's getpeercert() gives a verified one: the ssl module
    decodes only from a file, and only in its test helper; {} where that is missing."""
    import os
    import tempfile

    decode = getattr(ssl._ssl, "_test_decode_cert", None)
    if decode is None:
        return {}
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as pem:
        pem.write(ssl.DER_cert_to_PEM_cert(der))
        pem.flush()
        try:
            return decode(os.fspath(pem.name))
        except (ssl.SSLError, ValueError):
            return {}


def peer_certificate(host, port, tls, timeout):
    """The DER form of the certificate a server shows, read over a connection that
    checks nothing and logs in to nothing; None if it cannot be had."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        client = Client(host, port=port, ssl=tls == "imaps", ssl_context=context,
                        timeout=timeout)
        try:
            if tls == "starttls":
                client.starttls(context)
            return client.socket().getpeercert(binary_form=True)
        finally:
            with contextlib.suppress(Exception):
                client.shutdown()
    except Exception:
        return None
