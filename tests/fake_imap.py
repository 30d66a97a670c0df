"""A small scripted IMAP server for tests: plain IMAP on a loopback port, one thread per
connection, enough IMAP4rev1 for imap-list and imap-fetch (CAPABILITY, LOGIN,
AUTHENTICATE, LIST, STATUS, EXAMINE, FETCH, UID FETCH, NOOP, LOGOUT), and hooks for
what no real server would do.

    with FakeIMAP({"INBOX": [b"Subject: a\\r\\n\\r\\nx\\r\\n"]}) as server:
        ... monkeypatch.setenv each of server.env(): alice on 127.0.0.1:server.port ...

mailbox       {folder name: [message bytes]}; names go out in modified UTF-7 as
              literals, so any name (NUL, CR, '"', 1,000 characters) is listed as is; a
              bytes name goes out as those bytes, valid modified UTF-7 or not
delimiter     the hierarchy delimiter of every LIST response ("/"; None sends NIL)
first_uid     the UID of each folder's first message (1); message n has UID
              first_uid + n - 1, so UIDs and sequence numbers differ when it is not 1
flags         {(folder, n): [flag bytes]} of message n (1-based; none if not given)
dates         {(folder, n): INTERNALDATE of message n, as sent: b'"29-Feb-2021 ..."'}
              (INTERNALDATE, 01-Jul-2005 12:00:00 +0000, if not given)
uidnext       {folder: the UIDNEXT that STATUS and EXAMINE report}, for a server whose
              UIDNEXT lags behind its messages (first_uid + count if not given)
marks_seen    a server that ignores PEEK: fetching a body sets \\Seen (False)
capabilities  the CAPABILITY list (STARTTLS is offered but always refused)
users         {user: password} for LOGIN, AUTHENTICATE PLAIN and CRAM-MD5
              ({"alice": "Fake-pass-13"})
tokens        {user: token} for AUTHENTICATE XOAUTH2 and OAUTHBEARER
greeting      the first line, or None for a server that never says a word
host          the address to listen on (127.0.0.1)
handlers      {command: handler(session, tag, args)} replacing the built-in handling
              ("FETCH", "UID FETCH", ...): write anything with session.send(bytes),
              wait with session.stall(), return False to drop the connection;
              session.fetch(args, by_uid) gives the usual [(number, response)]

speaking_tls(certfile, keyfile) is a STARTTLS handler that accepts and speaks TLS with
that certificate (the Dovecot fixture's), optionally changing the capabilities over it.

Recorded: commands (every command line received, literals inlined as quoted strings),
exchanges ([mechanism, [client responses, base64-decoded]] per AUTHENTICATE) and
longest_line (the longest line sent, literals' lines included).
"""

import base64
import hmac
import re
import socket
import ssl
import threading

from imapclient.imap_utf7 import encode as utf7

CAPABILITIES = ("IMAP4rev1", "AUTH=PLAIN", "AUTH=CRAM-MD5", "AUTH=XOAUTH2",
                "AUTH=OAUTHBEARER", "STARTTLS")
UIDVALIDITY = 1130
INTERNALDATE = b'"01-Jul-2005 12:00:00 +0000"'
LITERAL_SPEC = re.compile(rb"\{(\d+)(\+?)\}\r\n$")


class FakeIMAP:
    """The server: listens from construction until close(); see the module's doc."""

    def __init__(self, mailbox=None, delimiter="/", capabilities=CAPABILITIES,
                 users=None, tokens=None, greeting=b"* OK fake IMAP ready", handlers=None,
                 host="127.0.0.1", first_uid=1, flags=None, marks_seen=False, uidnext=None,
                 dates=None):
        self.mailbox = {"INBOX": []} if mailbox is None else mailbox
        self.delimiter, self.capabilities = delimiter, capabilities
        self.first_uid, self.flags, self.marks_seen = first_uid, flags or {}, marks_seen
        self.uidnext, self.dates = uidnext or {}, dates or {}
        self.longest_line = 0
        self.users = {"alice": "Fake-pass-13"} if users is None else users
        self.tokens = tokens or {}
        self.greeting, self.handlers = greeting, handlers or {}
        self.commands, self.exchanges = [], []
        self.closed = threading.Event()
        self._sockets = []
        self.listener = socket.create_server((host, 0))
        self.listener.settimeout(0.05)  # so that the accepting thread sees closed in time
        self.host, self.port = host, self.listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def env(self, user="alice"):
        """IMAP_* variables for the commands to log in here as user, without TLS."""
        return {"IMAP_SERVER": f"{self.host}:{self.port}", "IMAP_USER": user,
                "IMAP_PASSWORD": self.users.get(user, ""), "IMAP_TLS": "none"}

    def close(self):
        self.closed.set()
        self._acceptor.join()
        self.listener.close()
        for sock in self._sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self):
        while not self.closed.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            sock.settimeout(None)
            self._sockets.append(sock)
            threading.Thread(target=self.session_class(self, sock).serve, daemon=True).start()

    def folder(self, name):
        return next((f for f in self.mailbox if utf7(f) == name), None)

    def next_uid(self, folder):
        return self.uidnext.get(folder, self.first_uid + len(self.mailbox[folder]))


class Session:
    """One connection, served in its own thread."""

    def __init__(self, server, sock):
        self.server, self.sock = server, sock
        self.rfile = sock.makefile("rb")
        self.selected = None

    def send(self, data):
        self.server.longest_line = max(self.server.longest_line,
                                       *(len(line) for line in data.split(b"\r\n")))
        self.sock.sendall(data)

    def stall(self):
        """Say nothing more until the server is closed."""
        self.server.closed.wait()

    def serve(self):
        try:
            if self.server.greeting is None:
                self.stall()
                return
            self.send(self.server.greeting + b"\r\n")
            while (command := self.read_command()) is not None:
                self.server.commands.append(command)
                tag, name, args = parse(command)
                handler = self.server.handlers.get(name) or getattr(
                    type(self), "do_" + name.replace(" ", "_").lower(), None)
                if name == "EXAMINE":  # one refused leaves none selected (RFC 3501)
                    self.selected = None
                if handler is None:
                    self.send(tag + b" BAD unknown command\r\n")
                elif name in ("FETCH", "UID FETCH") and self.selected is None:
                    self.send(tag + b" BAD no mailbox selected\r\n")
                elif handler(self, tag, args) is False or name == "LOGOUT":
                    return
        except OSError:
            pass
        finally:
            self.sock.close()

    def read_command(self):
        """One command line; each literal in it read and put inline as a quoted string."""
        command = b""
        while line := self.rfile.readline():
            spec = LITERAL_SPEC.search(line)
            if not spec:
                return command + line.rstrip(b"\r\n")
            if not spec.group(2):
                self.send(b"+ go ahead\r\n")
            literal = self.rfile.read(int(spec.group(1)))
            command += line[:spec.start()] + quote(literal)
        return None

    def sasl(self, challenge=b"", initial=None):
        """The client's response: the initial one of the command (SASL-IR, with SASL-IR
        among the capabilities), else the answer to challenge."""
        if initial is None:
            self.send(b"+ " + base64.b64encode(challenge) + b"\r\n")
            initial = self.rfile.readline().strip()
        response = base64.b64decode(initial)
        self.server.exchanges[-1][1].append(response)
        return response

    # -- commands -------------------------------------------------------------

    def do_capability(self, tag, args):
        self.send(b"* CAPABILITY " + " ".join(self.server.capabilities).encode() + b"\r\n"
                  + tag + b" OK done\r\n")

    def do_noop(self, tag, args):
        self.send(tag + b" OK done\r\n")

    def do_starttls(self, tag, args):
        self.send(tag + b" NO [UNAVAILABLE] TLS is out of order today\r\n")

    def do_logout(self, tag, args):
        self.send(b"* BYE bye\r\n" + tag + b" OK done\r\n")

    def do_login(self, tag, args):
        user, rest = first_string(args)
        password, _ = first_string(rest)
        self.logged_in(tag, self.server.users.get(user.decode()) == password.decode())

    def logged_in(self, tag, success):
        self.send(tag + (b" OK logged in\r\n" if success else
                         b" NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"))

    def do_authenticate(self, tag, args):
        mechanism = args.split()[0].decode().upper()
        self.server.exchanges.append([mechanism, []])
        users, tokens = self.server.users, self.server.tokens
        if mechanism == "PLAIN":
            words = args.split()
            initial = words[1] if len(words) > 1 and "SASL-IR" in self.server.capabilities \
                else None
            _authz, user, password = self.sasl(initial=initial).decode().split("\0")
            self.logged_in(tag, users.get(user) == password)
        elif mechanism == "CRAM-MD5":
            challenge = b"<1896.697170952@fake.example>"
            user, _, digest = self.sasl(challenge).decode().rpartition(" ")
            expected = hmac.new(users.get(user, "").encode(), challenge, "md5").hexdigest()
            self.logged_in(tag, user in users and digest == expected)
        elif mechanism in ("XOAUTH2", "OAUTHBEARER"):
            fields = dict(kv.split("=", 1) for kv in self.sasl().decode().split("\1") if kv)
            user = fields.get("user") or fields.get("n,a", "").rstrip(",")
            if fields.get("auth") == f"Bearer {tokens.get(user)}":
                self.logged_in(tag, True)
            else:
                self.sasl(b'{"status":"invalid_token","schemes":"bearer"}')
                self.logged_in(tag, False)
        else:
            self.send(tag + b" NO unsupported mechanism\r\n")

    def do_list(self, tag, args):
        delimiter = b"NIL" if self.server.delimiter is None else quote(
            self.server.delimiter.encode())
        for name in self.server.mailbox:
            self.send(b"* LIST (\\HasNoChildren) " + delimiter + b" " + literal(utf7(name))
                      + b"\r\n")
        self.send(tag + b" OK done\r\n")

    def do_status(self, tag, args):
        name, _ = first_string(args)
        folder = self.server.folder(name)
        if folder is None:
            self.send(tag + b" NO no such folder\r\n")
            return
        count = len(self.server.mailbox[folder])
        self.send(b"* STATUS %s (MESSAGES %d UIDVALIDITY %d UIDNEXT %d)\r\n%s OK done\r\n"
                  % (literal(name), count, UIDVALIDITY, self.server.next_uid(folder), tag))

    def do_examine(self, tag, args):
        name, _ = first_string(args)
        self.selected = self.server.folder(name)
        if self.selected is None:
            self.send(tag + b" NO no such folder\r\n")
            return
        count = len(self.server.mailbox[self.selected])
        self.send(b"* FLAGS (\\Seen)\r\n* %d EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY %d] "
                  b"UIDs valid\r\n* OK [UIDNEXT %d] next\r\n%s OK [READ-ONLY] done\r\n"
                  % (count, UIDVALIDITY, self.server.next_uid(self.selected), tag))

    def fetch(self, args, by_uid):
        """[(number, response)] for FETCH args (by_uid: UID FETCH) in the selected folder,
        each response a whole untagged FETCH with UID, FLAGS, INTERNALDATE, RFC822.SIZE
        and the message-ID header or the body, as asked."""
        messages = self.server.mailbox[self.selected]
        ids, items = args.split(b" ", 1)
        first = self.server.first_uid
        if by_uid:
            numbers = [uid - first + 1 for uid in sequence(ids, first + len(messages) - 1)
                       if uid >= first]
        else:
            numbers = sequence(ids, len(messages))
        responses = []
        for number in numbers:
            data = messages[number - 1]
            flags = self.server.flags.setdefault((self.selected, number), [])
            if b"BODY.PEEK[]" in items and self.server.marks_seen and b"\\Seen" not in flags:
                flags.append(b"\\Seen")
            parts = [b"UID %d FLAGS (%s) INTERNALDATE %s RFC822.SIZE %d" % (
                first + number - 1, b" ".join(flags),
                self.server.dates.get((self.selected, number), INTERNALDATE), len(data))]
            if b"HEADER.FIELDS" in items:
                header = b"".join(re.findall(rb"(?im)^message-id:.*\r\n", data)) + b"\r\n"
                parts.append(b"BODY[HEADER.FIELDS (MESSAGE-ID)] " + literal(header))
            elif b"BODY.PEEK[]" in items:
                parts.append(b"BODY[] " + literal(data))
            responses.append((number, b"* %d FETCH (%s)\r\n" % (number, b" ".join(parts))))
        return responses

    def do_fetch(self, tag, args):
        self.send(b"".join(r for _n, r in self.fetch(args, False)) + tag + b" OK done\r\n")

    def do_uid_fetch(self, tag, args):
        self.send(b"".join(r for _n, r in self.fetch(args, True)) + tag + b" OK done\r\n")


FakeIMAP.session_class = Session  # a subclass of FakeIMAP may serve with its own


def speaking_tls(certfile, keyfile, capabilities=None):
    """A STARTTLS handler: OK, then TLS with this certificate; capabilities, if given,
    are those said from then on."""

    def starttls(session, tag, _args):
        session.send(tag + b" OK begin TLS\r\n")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certfile, keyfile)
        session.sock = context.wrap_socket(session.sock, server_side=True)
        session.rfile = session.sock.makefile("rb")
        if capabilities is not None:
            session.server.capabilities = capabilities

    return starttls


def parse(command):
    tag, _, rest = command.partition(b" ")
    name, _, args = rest.partition(b" ")
    name = name.decode("ascii", "replace").upper()
    if name == "UID":
        sub, _, args = args.partition(b" ")
        name = "UID " + sub.decode("ascii", "replace").upper()
    return tag, name, args


def first_string(args):
    """(value, rest) of the first atom or quoted string in args."""
    args = args.lstrip(b" ")
    if not args.startswith(b'"'):
        atom, _, rest = args.partition(b" ")
        return atom, rest
    value, i = bytearray(), 1
    while args[i:i + 1] != b'"':
        if args[i:i + 1] == b"\\":
            i += 1
        value += args[i:i + 1]
        i += 1
    return bytes(value), args[i + 1:]


def quote(data):
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def literal(data):
    return b"{%d}\r\n%s" % (len(data), data)


def sequence(text, count):
    """The numbers of a sequence set such as 1:3,7 or 1:*."""
    numbers = []
    for item in text.decode().split(","):
        first, _, last = item.partition(":")
        first = count if first == "*" else int(first)
        last = first if not last else count if last == "*" else int(last)
        numbers += range(min(first, last), min(max(first, last), count) + 1)
    return numbers
