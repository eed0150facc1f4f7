"""Request bodies of the public API, validated by pydantic with field paths like ``client.email``.

Models are strict (``"1"`` is not an id) and every text is bounded and held to the one standard
for typed text (:mod:`bookwell.core.foundation.text`), as the pages' forms and the commands are,
so no input can reach the database, a log or a mail header in a shape it would choke on.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

from bookwell.core.foundation import text

EARLIEST_YEAR, LATEST_YEAR = 1970, 2200


def _single_line(value: str) -> str:
    if not text.is_single_line(value):
        # A custom error, so the field says the standard's message and not "Value error, ...".
        raise PydanticCustomError("single_line", text.SINGLE_LINE_MESSAGE)
    return value


def _multi_line(value: str) -> str:
    if not text.is_multi_line(value):
        raise PydanticCustomError("multi_line", text.MULTI_LINE_MESSAGE)
    return value


def _sane_instant(value: datetime) -> datetime:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
    return value


def sane_day(value: date) -> date:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
    return value


# The document states the standard too (a pattern), so a generated client never sends text the
# server refuses.
_ONE_LINE = Field(json_schema_extra={"pattern": text.SINGLE_LINE_PATTERN})
_MULTI_LINE = Field(json_schema_extra={"pattern": text.MULTI_LINE_PATTERN})

Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_single_line),
    Field(json_schema_extra={"pattern": text.NAME_PATTERN}),
]
Phone = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=40, pattern=r"^[0-9+()./ -]*$"),
]
Notes = Annotated[
    str, StringConstraints(max_length=2000), AfterValidator(_multi_line), _MULTI_LINE
]
Reason = Annotated[
    str, StringConstraints(max_length=500), AfterValidator(_multi_line), _MULTI_LINE
]
Email = Annotated[EmailStr, StringConstraints(max_length=254)]
# A manage token is only hashed and compared, never stored or shown: any text is harmless, and one
# that matches nothing is answered 404 like every wrong token.
Token = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Instant = Annotated[AwareDatetime, AfterValidator(_sane_instant)]
MAX_ID = 2**31 - 1  # the databases' INTEGER
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
ConsentId = Annotated[
    str, StringConstraints(min_length=1, max_length=100), AfterValidator(_single_line), _ONE_LINE
]


class Body(BaseModel):
    # Unknown fields are refused, not dropped: a booking sent with an "end" two hours after its
    # start must not be booked for the service's 30 minutes without a word.
    model_config = ConfigDict(strict=True, extra="forbid")


class ClientIn(Body):
    name: Name
    email: Email
    phone: Phone | None = None
    notes: Notes | None = None


class BookingIn(Body):
    service_id: Id
    provider_id: Id
    start: Instant = Field(description="ISO 8601 with an offset, e.g. 2027-03-29T10:00:00+02:00")
    client: ClientIn
    consents: list[ConsentId] = Field(default_factory=list, max_length=50)


class StaffBookingIn(BookingIn):
    """A booking made by the business's staff for a client: with what the client already paid
    (0 to the service's price, checked against it by core)."""

    prepaid_cents: Annotated[int, Field(ge=0, le=MAX_ID)] = 0


class CancelIn(Body):
    token: Token


class RescheduleIn(Body):
    token: Token
    start: Instant
    provider_id: Id | None = None


# No bounds here: core's rules (passwords.py) and the plugins' judge a password, and list every
# rule it breaks; the request size limit bounds it anyway.
Password = str


class PasswordChangeIn(Body):
    current_password: Password
    new_password: Password


class ClientSignUpIn(Body):
    name: Name
    email: Email
    password: Password


class StaffCancelIn(Body):
    reason: Reason | None = None


class StaffRescheduleIn(Body):
    start: Instant
    provider_id: Id | None = None
