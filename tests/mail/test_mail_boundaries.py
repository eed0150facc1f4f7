"""A message's MIME boundaries are chosen when it is built, never one its contents hold."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser

from bookwell.core.mail import transport

ICS = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n"


class _App:
    config = {"MAIL_FROM": "Bookwell <no-reply@example.com>"}


def test_a_boundary_the_text_holds_is_never_used(monkeypatch):
    taken = "a" * 32
    offered = iter([taken, "b" * 32, "c" * 32, "d" * 32])
    monkeypatch.setattr(transport.secrets, "token_hex", lambda _bytes: next(offered))
    text = f"A line that looks like a boundary:\n--==============={taken}==\nand more."
    envelope = transport.Envelope(
        "<one@bookwell>", "zoe@example.com", "Booked", text, "<p>Booked</p>", ICS, "Salon", None
    )
    message = transport.build(_App, envelope, datetime(2027, 3, 1, 9, tzinfo=UTC))
    boundaries = [part.get_boundary() for part in message.walk() if part.is_multipart()]
    assert sorted(boundaries) == [f"==============={'b' * 32}==", f"==============={'c' * 32}=="]

    read = BytesParser(policy=policy.default).parsebytes(message.as_bytes())
    assert read.get_body(("plain",)).get_content().rstrip("\n") == text
    assert read.get_body(("html",)).get_content().strip() == "<p>Booked</p>"
    assert [part.get_filename() for part in read.iter_attachments()] == ["invite.ics"]
