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
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import Compat32
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from email_validator import EmailNotValidError, validate_email
from flask import Flask

from bookwell.core.foundation.text import folded
from bookwell.core.storage.files import write_durably

SMTP_TIMEOUT_SECONDS = 15


# The classic ``email.mime`` classes under the compat32 policy: they store each header as the
# text it is, where ``EmailMessage`` parses every header it sets into a tree and walks it again
# to write it. Building and writing a booking's message took 1.55 ms that way, 0.7 ms this way
# (mail had been a fifth of the server's CPU per booking).
class _MessagePolicy(Compat32):
    def _fold(self, name: str, value: Any, sanitize: bool) -> str:
        if isinstance(value, str):
            if "\n" in value or "\r" in value:
                # A line break would end the header early: another header, or the body, could
                # follow it. Compat32 refuses only a break followed by "Name:".
                raise ValueError(f"the {name} header holds a line break")
            # A header that fits on its line as plain ASCII is written as it is, which is what
            # folding makes of it; folding builds a Header object for each one (three-fifths of
            # the time it took to write a message).
            if value.isascii() and len(name) + 2 + len(value) <= (self.max_line_length or 0):
                return f"{name}: {value}{self.linesep}"
        return super()._fold(name, value, sanitize)


MESSAGE_POLICY = _MessagePolicy()
SMTP_POLICY = MESSAGE_POLICY.clone(linesep="\r\n")

# Text and HTML as quoted-printable (readable, and 7-bit safe); the invitation as it is (8-bit
# when its text is not ASCII), which is how calendars read it.
_READABLE_UTF8 = Charset("utf-8")
_READABLE_UTF8.body_encoding = QP
_PLAIN_UTF8 = Charset("utf-8")
_PLAIN_UTF8.body_encoding = None


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


def build(app: Flask, envelope: Envelope, now) -> Message:
    name, address = parseaddr(str(app.config["MAIL_FROM"]))
    to, international = recipient(envelope.to)
    contents = (envelope.text, envelope.html or "", envelope.ics or "")
    message: Message = _text_part(envelope.text, "plain", _READABLE_UTF8)
    if envelope.html:
        message = _multipart(
            "alternative", [message, _text_part(envelope.html, "html", _READABLE_UTF8)], contents
        )
    if envelope.ics:
        invite = _text_part(envelope.ics, "calendar", _PLAIN_UTF8)
        invite.set_param("method", "CANCEL" if "\nMETHOD:CANCEL" in envelope.ics else "REQUEST")
        invite.add_header("Content-Disposition", "attachment", filename="invite.ics")
        message = _multipart("mixed", [message, invite], contents)
    message["MIME-Version"] = "1.0"
    # Names and subjects folded to one line: a header with a line break in it (a name stored
    # before the input standard, a plugin's subject) would fail the message on every attempt.
    message["From"] = formataddr((folded(envelope.business or name), address), charset="utf-8")
    # A mailbox name only SMTPUTF8 carries is written as its UTF-8 bytes: as an encoded word
    # (=?utf-8?...?=@example.com) it would be no address at all, and the mail could not arrive.
    message["To"] = to.encode().decode("ascii", "surrogateescape") if international else to
    if envelope.reply_to:
        message["Reply-To"] = envelope.reply_to
    message["Subject"] = _header_text(folded(envelope.subject))
    message["Date"] = format_datetime(now)
    message["Message-ID"] = envelope.message_id
    return message


def _text_part(text: str, subtype: str, charset: Charset) -> Message:
    part = MIMEText(text, subtype, charset, policy=MESSAGE_POLICY)
    del part["MIME-Version"]  # said once, on the message itself
    return part


def _multipart(subtype: str, parts: list[Message], contents: tuple[str, ...]) -> Message:
    part = MIMEMultipart(subtype, _boundary(contents), parts, policy=MESSAGE_POLICY)
    del part["MIME-Version"]
    return part


def _boundary(contents: tuple[str, ...]) -> str:
    """A boundary none of the contents holds: 128 random bits. (Left to the generator, each is
    checked against the message's text with a regular expression compiled for that one random
    boundary: two-fifths of the time it took to build and write a message.)"""
    while True:
        boundary = f"==============={secrets.token_hex(16)}=="
        if not any(boundary in content for content in contents):
            return boundary


def _header_text(text: str) -> str | Header:
    return text if text.isascii() else Header(text, "utf-8")


def send(app: Flask, envelope: Envelope, now) -> None:
    """Send or write one message; raises on any failure (the outbox retries it)."""
    message = build(app, envelope, now)
    url = app.config.get("SMTP_URL")
    if url:
        sender = parseaddr(str(app.config["MAIL_FROM"]))[1]
        to, international = recipient(envelope.to)
        _send_smtp(str(url), message, sender, to, international)
    else:
        write_file(outbox_folder(app), envelope.message_id, message)


def outbox_folder(app: Flask) -> Path:
    return Path(app.config.get("STORAGE") or app.instance_path) / "outbox"


def file_name(message_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@-]", "_", message_id.strip("<>")) + ".eml"


def write_file(folder: Path, message_id: str, message: Message) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / file_name(message_id)
    write_durably(target, message.as_bytes())
    return target


def _send_smtp(
    url: str, message: Message, sender: str, recipient: str, international: bool
) -> None:
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
        connection.sendmail(
            sender,
            [recipient],
            message.as_bytes(policy=SMTP_POLICY),
            mail_options=["SMTPUTF8"] if international else [],
        )
