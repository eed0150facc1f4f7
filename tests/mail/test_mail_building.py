"""A message as it is written: every header and part reads back as it was given."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from email.policy import Compat32

import pytest

from bookwell.core.mail import transport

ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:CANCEL\r\nBEGIN:VEVENT\r\n"
    "SUMMARY:Coupe – Salon Élodie\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)
TEXT = (
    "Bonjour Zoë,\n"
    "From here on, a line the mbox convention would have changed.\n"
    ".\n"
    "A line far longer than seventy-eight characters, which quoted-printable must break "
    "softly and give back whole.\n"
)


class _App:
    config = {"MAIL_FROM": "Bookwell <no-reply@example.com>"}


def read(message) -> policy.EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(message.as_bytes())


def test_every_header_and_part_reads_back_as_given():
    envelope = transport.Envelope(
        "<one@bookwell>",
        "zoe@example.com",
        "Réservation annulée : Coupe le lundi 1 mars 2027 à 09:00 (Europe/Paris), Salon Élodie",
        TEXT,
        "<p>Réservation annulée</p>",
        ICS,
        "Salon Élodie, Paris",
        "desk@salon.example",
    )
    message = read(transport.build(_App, envelope, datetime(2027, 3, 1, 9, tzinfo=UTC)))

    assert message["From"].addresses[0].display_name == "Salon Élodie, Paris"
    assert message["From"].addresses[0].addr_spec == "no-reply@example.com"
    assert str(message["To"]) == "zoe@example.com"
    assert str(message["Reply-To"]) == "desk@salon.example"
    assert str(message["Subject"]) == envelope.subject
    assert str(message["Message-ID"]).strip() == "<one@bookwell>"
    assert message["Date"].datetime == datetime(2027, 3, 1, 9, tzinfo=UTC)
    assert str(message["MIME-Version"]) == "1.0"
    assert message.get_body(("plain",)).get_content() == TEXT
    assert message.get_body(("html",)).get_content().strip() == "<p>Réservation annulée</p>"
    (invite,) = message.iter_attachments()
    assert invite.get_filename() == "invite.ics"
    assert invite.get_content_type() == "text/calendar"
    assert invite.get_param("method") == "CANCEL"
    # Lines end as the transport's lines end (CRLF over SMTP), as with any text part.
    assert invite.get_content().splitlines() == ICS.splitlines()


def test_a_message_of_text_alone_is_one_part():
    envelope = transport.Envelope(
        "<two@bookwell>", "zoe@example.com", "Reminder", "See you.\n", None, None, None, None
    )
    message = read(transport.build(_App, envelope, datetime(2027, 3, 1, 9, tzinfo=UTC)))
    assert not message.is_multipart()
    assert message.get_content() == "See you.\n"
    assert message["From"].addresses[0].display_name == "Bookwell"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("To", "zoe@example.com"),
        ("Subject", "Booked"),
        ("Subject", "Booking confirmed: Cut on Monday 1 March 2027, 09:00 (Europe/Paris)"),
        # "Subject: " and the value make 78 characters (the line's limit), then 79 and 80.
        ("Subject", "a few words " * 5 + "x" * 9),
        ("Subject", "a few words " * 5 + "x" * 10),
        ("Subject", "a few words " * 5 + "x" * 11),
        ("Subject", "two  spaces,\ttab and trailing space "),
        ("Message-ID", "<179589535576.14129.18174269428539947828.bfdca32b@bookwell.invalid>"),
        ("Subject", "Zoë"),
    ],
)
def test_a_header_is_written_as_the_standard_policy_writes_it(name, value):
    standard = Compat32()
    assert transport.MESSAGE_POLICY.fold(name, value) == standard.fold(name, value)
    assert transport.MESSAGE_POLICY.fold_binary(name, value) == standard.fold_binary(name, value)


@pytest.mark.parametrize(
    "reply_to", ["desk@salon.example\n\nA body of someone else's", "desk@salon.example\r", "a\n b"]
)
def test_a_header_with_a_line_break_is_refused_not_written(reply_to):
    envelope = transport.Envelope(
        "<three@bookwell>", "zoe@example.com", "Booked", "Booked.\n", None, None, None, reply_to
    )
    message = transport.build(_App, envelope, datetime(2027, 3, 1, 9, tzinfo=UTC))
    with pytest.raises(ValueError, match="Reply-To header holds a line break"):
        message.as_bytes()
