"""The LIST-STATUS (RFC 5819) an imap-list session starts with, sent behind its LOGIN
before the answer (logins.after_login), so that the login and the listing share a round
trip.  The capabilities that decide its form (LIST-STATUS, SPECIAL-USE, CONDSTORE) come
with the login's answer, after it is sent: it goes out in the form a server offering
LIST_AHEAD takes (Dovecot, Cyrus, Gmail), with an ENABLE QRESYNC in front.  On a server
that offers less, the ENABLE changes nothing and the LIST is refused or its answer
dropped; Store.folders_and_statuses then asks as that server takes it.  A server that
hides an extension it has, and enables it when asked, gets a new connection (answer).

Private API (see transport.py): imaplib's state, through IMAPClient's _imap."""

from . import pipeline

LIST_AHEAD = ("LIST-STATUS", "SPECIAL-USE", "CONDSTORE")


def list_status_command(has_capability):
    """Store.folders_and_statuses's LIST-STATUS for a server with these capabilities
    (has_capability(name) -> bool); None without LIST-STATUS.  The return options
    CHILDREN (RFC 5258) and SPECIAL-USE (RFC 6154) ask for the flags a plain LIST
    gives."""
    if not has_capability("LIST-STATUS"):
        return None
    special_use = " SPECIAL-USE" if has_capability("SPECIAL-USE") else ""
    items = pipeline.status_items(has_capability("CONDSTORE"))
    return ("LIST", '""', '"*"', "RETURN", f"(CHILDREN{special_use} STATUS ({items}))")


def sender(qresync):
    """For logins.after_login: send the ENABLE QRESYNC (if qresync) and LIST-STATUS."""

    def send(client):
        if qresync:
            client.enable_later("QRESYNC")
        wire = pipeline.Wire(client)
        command = list_status_command(LIST_AHEAD.__contains__)
        imap = client._imap
        state, imap.state = imap.state, "AUTH"  # as the server will be when it reads it
        try:
            wire.send([command])
        finally:
            imap.state = state
        client.listing_ahead = (command, wire, qresync)

    return send


def answer(client, command, offers):
    """The Answer to the listing sent behind the login if it is command; None where
    none was sent or it was another (its answer read and dropped).  False where the
    server took it as enabling an extension it does not offer (offers(name) -> bool):
    QRESYNC by the ENABLE, CONDSTORE by HIGHESTMODSEQ in STATUS (RFC 7162 3.1), as a
    Dovecot told to hide them does; the session is then not as its capabilities say,
    and is to be started again."""
    ahead = getattr(client, "listing_ahead", None)
    if ahead is None:
        return None
    client.listing_ahead = None
    sent, wire, qresync = ahead
    said = wire.answer()
    enabled = b" ".join(said.untagged.get("ENABLED", [])).upper().split()
    if qresync and b"QRESYNC" in enabled and not offers("QRESYNC"):
        return False
    if said.status == "OK" and not offers("CONDSTORE") and any(
            b"HIGHESTMODSEQ" in status for _name, status in pipeline.statuses(said)):
        return False
    return said if sent == command else None
