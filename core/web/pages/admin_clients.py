"""The staff pages' client list, ``/admin/<tenant>/clients``: the business's clients (one per
e-mail address, whatever its case, as a client's record is), searched by name, e-mail or phone,
newest booking first, a page at a time; each links to the client's record and history
(``admin.client_record``).

Bookwell keeps no client table: a client is the bookings made under one address. Only this
tenant's bookings are read, and of those only the ones the viewer may read (their role, their
provider, a grant on a client). A phone number may be encrypted at rest (a plugin's
``encrypt_client_fields``), so it is matched on its digits in clear, after decryption, never in
SQL; the listing is audited like an agenda when a plugin asks for view auditing.
"""

from __future__ import annotations

import re

from flask import abort, current_app, request
from flask_babel import lazy_gettext
from flask_wtf import FlaskForm
from sqlalchemy import func, or_, select
from wtforms import StringField
from wtforms.validators import Length, Optional

from bookwell.core.access.permissions import READ_BOOKINGS, BookingReach
from bookwell.core.context import protection
from bookwell.core.storage import db
from bookwell.core.storage.models import Booking, Tenant
from bookwell.core.web.forms import SingleLine
from bookwell.core.web.pages.admin import (
    _unlinked,
    admin_pages,
    page,
    reach_of,
    require_page,
    viewed,
)

PER_PAGE = 25
MAX_PAGE = 10_000
# A phone search needs this many digits: fewer would match nearly every number.
PHONE_DIGITS = 3
PHONE_LOOKING = re.compile(r"[\d\s+().\-/]+")


class ClientSearch(FlaskForm):
    class Meta:
        csrf = False  # a search changes nothing: a plain GET form, bookmarkable

    q = StringField(
        lazy_gettext("Name, e-mail or phone"),
        validators=[SingleLine(), Optional(), Length(max=200)],
    )


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _readable(reach: BookingReach):
    """The bookings ``reach`` reads, as SQL: a role that reads everything, else its provider's
    and those of the clients a grant opens."""
    if reach.everything:
        return None
    granted = [subject.removeprefix("client:") for subject in reach.clients]
    conditions = [func.lower(Booking.client_email).in_(granted)] if granted else []
    if reach.provider_id is not None:
        conditions.append(Booking.provider_id == reach.provider_id)
    return or_(*conditions) if conditions else Booking.id.is_(None)


def _phone_matches(tenant: Tenant, digits: str, readable) -> list[str]:
    """The (lower-cased) e-mail addresses of the clients whose phone has ``digits`` in it."""
    query = select(Booking.client_email, Booking.client_phone).where(
        Booking.tenant_id == tenant.id, Booking.client_phone.is_not(None)
    )
    if readable is not None:
        query = query.where(readable)
    app = current_app._get_current_object()
    found = set()
    for email, phone in db.session().execute(query):
        clear = protection.decrypt_field(app, tenant.id, phone)
        if digits in re.sub(r"\D", "", clear):
            found.add(email.lower())
    return sorted(found)


def search_clients(tenant: Tenant, reach: BookingReach, text: str, page_number: int):
    """One page of the clients ``reach`` reads whose name, e-mail or phone holds ``text``:
    ``(rows, total)``, rows as dicts of ``email``, ``name`` (of their latest booking),
    ``bookings`` and ``latest``."""
    email_key = func.lower(Booking.client_email)
    readable = _readable(reach)
    matching = select(email_key).where(Booking.tenant_id == tenant.id)
    if readable is not None:
        matching = matching.where(readable)
    text = text.strip().casefold()
    if text:
        pattern = _like(text)
        found = [
            func.lower(Booking.client_name).like(pattern, escape="\\"),
            email_key.like(pattern, escape="\\"),
        ]
        digits = re.sub(r"\D", "", text)
        if len(digits) >= PHONE_DIGITS and PHONE_LOOKING.fullmatch(text):
            phones = _phone_matches(tenant, digits, readable)
            if phones:
                found.append(email_key.in_(phones))
        matching = matching.where(or_(*found))
    grouped = (
        select(
            email_key.label("email"),
            func.count().label("bookings"),
            func.max(Booking.starts_at).label("latest"),
        )
        .where(Booking.tenant_id == tenant.id, email_key.in_(matching.scalar_subquery()))
        .group_by(email_key)
    )
    if readable is not None:
        grouped = grouped.where(readable)
    reader = db.session()
    total = reader.scalar(select(func.count()).select_from(grouped.subquery())) or 0
    rows = reader.execute(
        grouped.order_by(func.max(Booking.starts_at).desc(), email_key)
        .limit(PER_PAGE)
        .offset((page_number - 1) * PER_PAGE)
    ).all()
    names = _latest_names(tenant, [row.email for row in rows], readable)
    return [
        {
            "email": row.email,
            "name": names.get(row.email, ""),
            "bookings": row.bookings,
            "latest": row.latest,
        }
        for row in rows
    ], total


def _latest_names(tenant: Tenant, emails: list[str], readable) -> dict[str, str]:
    """The name each client gave on their latest booking (people fix typos, marry, ...)."""
    if not emails:
        return {}
    email_key = func.lower(Booking.client_email)
    query = (
        select(email_key, Booking.client_name)
        .where(Booking.tenant_id == tenant.id, email_key.in_(emails))
        .order_by(Booking.starts_at.desc(), Booking.id.desc())
    )
    if readable is not None:
        query = query.where(readable)
    names: dict[str, str] = {}
    for email, name in db.session().execute(query):
        names.setdefault(email, name)
    return names


def _page_number() -> int:
    raw = request.args.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        abort(404)
    return int(raw)


@admin_pages.get("/clients")
def clients(slug: str):
    tenant, user = require_page(slug, READ_BOOKINGS, "clients", support=True)
    form = ClientSearch(request.args)
    number = _page_number()
    reach = reach_of(tenant, user)
    if not form.validate():
        return page(
            "admin/clients.html",
            tenant,
            user,
            status=422,
            form=form,
            rows=[],
            total=0,
            number=1,
            pages=1,
            unlinked=_unlinked(reach),
        )
    text = (form.q.data or "").strip()
    rows, total = search_clients(tenant, reach, text, number)
    pages = max(1, -(-total // PER_PAGE))
    if number > pages:
        abort(404)
    viewed(tenant, user, f"clients:{text}", [row["email"] for row in rows], kind="client")
    return page(
        "admin/clients.html",
        tenant,
        user,
        form=form,
        rows=rows,
        total=total,
        number=number,
        pages=pages,
        query=text,
        unlinked=_unlinked(reach),
    )
