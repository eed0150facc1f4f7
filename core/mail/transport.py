"""Handing one message over: SMTP when ``SMTP_URL`` is set, else an ``.eml`` file.

The file transport names each file by the message's Message-ID and replaces it atomically, so a
message written twice (a retried job) is still one file. Over SMTP the Message-ID stays the same
on every attempt, so a receiving server can drop a duplicate.
"""

from __future__ import annotations

import re
import secrets
import smtplib
import ssl
from dataclasses import dataclass
from email import policy
from email.headerregistry import HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from email_validator import EmailNotValidError, validate_email
from flask import Flask

from bookwell.core.foundation.text import folded
from bookwell.core.storage.files import write_durably

SMTP_TIMEOUT_SECONDS = 15


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, making each header's class once: the standard one builds a
    new class with ``type()`` for every header of every message, a fifth of the time it takes
    to build one of our messages."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        made = self._made.get(key)
        if made is None:  # two threads may both make it: either class does the same
            made = self._made[key] = super().__getitem__(name)
        return made


DEFAULT_POLICY = policy.default.clone(header_factory=_HeaderClasses())
UTF8_POLICY = policy.SMTPUTF8.clone(header_factory=_HeaderClasses())


@dataclass(frozen=True)
class Envelope:
    """An outbox row as the transports need it, read while it was claimed."""

    message_id: str
    to: str
    subject: str
    text: str
    html: str | None
    ics: str | None
    business: str | None
    reply_to: str | None


def recipient(address: str) -> tuple[str, bool]:
    """The address as it goes on the wire, and whether it needs SMTPUTF8: an international
    domain in its ASCII (IDNA) form; a non-ASCII mailbox name kept as UTF-8, which only SMTPUTF8
    carries. (As a header, the default policy made ``=?utf-8?q?...?=@example.com`` of it: no
    address at all, so the mail could never arrive.)"""
    try:
        checked = validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return address, not address.isascii()
    if checked.ascii_email:
        return checked.ascii_email, False
    return f"{checked.local_part}@{checked.ascii_domain or checked.domain}", True


def build(app: Flask, envelope: Envelope, now) -> EmailMessage:
    name, address = parseaddr(str(app.config["MAIL_FROM"]))
    to, international = recipient(envelope.to)
    message = EmailMessage(policy=UTF8_POLICY if international else DEFAULT_POLICY)
    # Names and subjects folded to one line: a header with a line break in it (a name stored
    # before the input standard, a plugin's subject) would fail the message on every attempt.
    message["From"] = formataddr((folded(envelope.business or name), address))
    message["To"] = to
    if envelope.reply_to:
        message["Reply-To"] = envelope.reply_to
    message["Subject"] = folded(envelope.subject)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = envelope.message_id
    message.set_content(envelope.text)
    if envelope.html:
        message.add_alternative(envelope.html, subtype="html")
    if envelope.ics:
        method = "CANCEL" if "\nMETHOD:CANCEL" in envelope.ics else "REQUEST"
        message.add_attachment(
            envelope.ics, subtype="calendar", filename="invite.ics", params={"method": method}
        )
    _set_boundaries(message, (envelope.text, envelope.html or "", envelope.ics or ""))
    return message


def _set_boundaries(message: EmailMessage, contents: tuple[str, ...]) -> None:
    """Give each multipart its boundary now. Left to the generator, each is checked against
    the message's text with a regular expression compiled for that one random boundary: that
    took two-fifths of the time to build and write a message. Ours are 128 random bits, and
    checked against the contents too."""
    for part in message.walk():
        if part.is_multipart():
            while True:
                boundary = f"==============={secrets.token_hex(16)}=="
                if not any(boundary in content for content in contents):
                    break
            part.set_boundary(boundary)


def send(app: Flask, envelope: Envelope, now) -> None:
    """Send or write one message; raises on any failure (the outbox retries it)."""
    message = build(app, envelope, now)
    url = app.config.get("SMTP_URL")
    if url:
        sender = parseaddr(str(app.config["MAIL_FROM"]))[1]
        _send_smtp(str(url), message, sender, recipient(envelope.to)[0])
    else:
        write_file(outbox_folder(app), envelope.message_id, message)


def outbox_folder(app: Flask) -> Path:
    return Path(app.config.get("STORAGE") or app.instance_path) / "outbox"


def file_name(message_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@-]", "_", message_id.strip("<>")) + ".eml"


def write_file(folder: Path, message_id: str, message: EmailMessage) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / file_name(message_id)
    write_durably(target, message.as_bytes())
    return target


def _send_smtp(url: str, message: EmailMessage, sender: str, recipient: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError(f"SMTP_URL must start with smtp:// or smtps://, not {parts.scheme}://")
    options = parse_qs(parts.query)
    starttls = options.get("starttls", ["0"])[0].lower() in ("1", "true", "yes")
    host = parts.hostname or "localhost"
    context = ssl.create_default_context()
    if parts.scheme == "smtps":
        connection: smtplib.SMTP = smtplib.SMTP_SSL(
            host, parts.port or 465, timeout=SMTP_TIMEOUT_SECONDS, context=context
        )
    else:
        connection = smtplib.SMTP(host, parts.port or 25, timeout=SMTP_TIMEOUT_SECONDS)
    with connection:
        if starttls:
            connection.starttls(context=context)
        if parts.username:
            connection.login(unquote(parts.username), unquote(parts.password or ""))
        connection.send_message(message, from_addr=sender, to_addrs=[recipient])
