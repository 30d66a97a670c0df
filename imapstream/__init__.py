"""imapstream: IMAP backup as small composable Unix filters."""

__version__ = "0.1.0"
