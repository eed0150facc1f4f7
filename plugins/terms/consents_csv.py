"""The proof of consents as CSV, for the owner to keep or hand over, safe to open in a
spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import UTC

from bookwell.hooks import GivenConsent

COLUMNS = (
    "booking reference",
    "client name",
    "client e-mail",
    "consent id",
    "version",
    "text_sha256",
    "given_at",
    "ip",
    "user_agent",
)
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): a client
# may type a name such as =HYPERLINK(...), and a user agent is whatever the client sent.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def consents_csv(consents: Iterable[GivenConsent]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for consent in consents:
        writer.writerow(
            cell(value)
            for value in (
                consent.booking_reference,
                consent.client_name,
                consent.client_email,
                consent.id,
                consent.version,
                consent.text_sha256,
                consent.given_at.astimezone(UTC).isoformat(),
                consent.ip,
                consent.user_agent,
            )
        )
    return out.getvalue()
