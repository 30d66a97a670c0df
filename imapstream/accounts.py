"""The accounts file of imapbackup --accounts (imapstream(7), "Accounts file"): NDJSON, one
account per line; blank lines and lines beginning with # are skipped.  A line that is not
a valid account is an error for that line alone.  An account names where its password
comes from (a file or a command, run on the host that backs it up), never the password,
so its record can go into argv, a joblog or a log.  Each account runs on one host of a
list, the same one whatever the order of the list: rendezvous hashing of its name."""

import re
from typing import NamedTuple

from .errors import DataError
from .records import orjson

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")
SOURCES = ("password_file", "password_command", "oauth2_token_command")
CHOICES = {"tls": ("imaps", "starttls", "none"),
           "compress": ("gzip", "bzip2", "xz", "none"),
           "auth": ("login", "plain", "cram-md5", "oauthbearer", "xoauth2")}
# Field -> (type, imapbackup option).  A string field is one option and its value, a
# boolean one the option alone when true, a list one the option once per element.
FIELDS = {
    "name": (str, None), "server": (str, "--server"), "user": (str, "--user"),
    "dir": (str, None),
    "password_file": (str, "--password-file"),
    "password_command": (str, "--password-command"),
    "oauth2_token_command": (str, "--oauth2-token-command"),
    "auth": (str, "--auth"), "tls": (str, "--tls"), "cafile": (str, "--cafile"),
    "fingerprint": (str, "--fingerprint"), "insecure": (bool, "--insecure"),
    "certfile": (str, "--certfile"), "keyfile": (str, "--keyfile"),
    "timeout": (int, "--timeout"), "jobs": (int, "--jobs"),
    "compress": (str, "--compress"), "thunderbird": (bool, "--thunderbird"),
    "yes_overwrite_mboxes": (bool, "--yes-overwrite-mboxes"),
    "folders": (list, "--folders"), "exclude_folders": (list, "--exclude-folders"),
    "include": (list, "--include"), "exclude": (list, "--exclude"),
}
REQUIRED = ("name", "server", "user")
TYPE_NAMES = {str: "a string", bool: "true or false", int: "a whole number from 1 up",
              list: "an array of strings"}


class Account(NamedTuple):
    """A valid account: its fields as the file gave them (JSON types)."""

    fields: dict

    @property
    def name(self):
        return self.fields["name"]

    @property
    def dir(self):
        return self.fields.get("dir", self.name)

    @property
    def server(self):
        return self.fields["server"].lower()

    def line(self):
        """The account as one NDJSON line, with "@" written \\u0040, so that no tool that
        splits arguments at "@" (GNU parallel's host groups, ssh) can take it apart."""
        return orjson().dumps(self.fields).decode().replace("@", "\\u0040")


class BadLine(NamedTuple):
    """A line that is no valid account: its number, the name it gives (None if none),
    and what is wrong, naming fields but never showing a value but the name."""

    lineno: int
    name: str | None
    problem: str


def parse_account(text):
    """The account on one line of text, or DataError saying what is wrong."""
    json = orjson()
    try:
        fields = json.loads(text)
    except json.JSONDecodeError:
        raise DataError("not a JSON object") from None
    if not isinstance(fields, dict):
        raise DataError("not a JSON object")
    name = fields.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise DataError('"name" must be letters, digits and . _ @ + - (at most 128, '
                        "the first a letter or digit)")
    if "password" in fields:
        raise DataError('"password" is not accepted: the file would hold it; give '
                        '"password_file", "password_command" or "oauth2_token_command"')
    for field in sorted(fields):
        if field not in FIELDS:
            raise DataError(f'unknown field "{field}"')
        kind, _option = FIELDS[field]
        value = fields[field]
        if not _has_type(value, kind):
            raise DataError(f'"{field}" must be {TYPE_NAMES[kind]}')
        if field in CHOICES and value not in CHOICES[field]:
            raise DataError(f'"{field}" must be one of {", ".join(CHOICES[field])}')
    for field in REQUIRED:
        if not fields.get(field):
            raise DataError(f'"{field}" is missing')
    if sum(field in fields for field in SOURCES) > 1:
        raise DataError(f"give at most one of {', '.join(SOURCES)}")
    if "dir" in fields and (not fields["dir"] or "\0" in fields["dir"]):
        raise DataError('"dir" must be a directory name')
    return Account(fields)


def _has_type(value, kind):
    if kind is int:
        return type(value) is int and value >= 1
    if kind is list:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind is str:
        return isinstance(value, str) and "\0" not in value
    return type(value) is kind


def read_accounts(lines):
    """Each account line of an accounts file (bytes lines) as an Account or a BadLine;
    a name given twice makes every line after the first with it bad."""
    seen = set()
    for lineno, raw in enumerate(lines, 1):
        text = raw.strip()
        if not text or text.startswith(b"#"):
            continue
        try:
            account = parse_account(text)
        except DataError as exc:
            yield BadLine(lineno, _name_of(text), str(exc))
            continue
        if account.name in seen:
            yield BadLine(lineno, None, f'the name "{account.name}" is given twice')
            continue
        seen.add(account.name)
        yield account


def _name_of(text):
    try:
        name = orjson().loads(text).get("name")
    except (ValueError, AttributeError):
        return None
    return name if isinstance(name, str) and NAME.fullmatch(name) else None


def folder_list(name):
    """A folder name as one element of imapbackup -f A,B: \\ and , escaped."""
    return name.replace("\\", "\\\\").replace(",", "\\,")


def imapbackup_argv(account, directory):
    """imapbackup's options for the account, backing up into directory, with --json."""
    argv = []
    for field, value in account.fields.items():
        _kind, option = FIELDS[field]
        if option is None or value is False:
            continue
        if value is True:
            argv.append(option)
        elif isinstance(value, list):
            for element in value:
                argv += [option, folder_list(element) if "folders" in field else element]
        else:
            argv += [option, str(value)]
    return [*argv, "--mbox-dir", str(directory), "--nospinner", "--json"]


def login_key(login):
    """An sshlogin without its leading job count ("8/alice@host" -> "alice@host")."""
    return re.sub(r"^\d+/", "", login.strip())


def host_for(name, logins):
    """The login, of logins, that the account called name runs on: the one with the
    highest SHA-256 of login and name, so adding or removing a host moves only the
    accounts that go to it or came from it."""
    import hashlib  # here: the job of one account (account_run) never needs it

    return max(logins, key=lambda login: hashlib.sha256(
        f"{login_key(login)}\n{name}".encode()).digest())

