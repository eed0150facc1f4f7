"""The staff pages at ``/admin/<tenant>/``: day and week agendas per provider, a booking's details
and what staff do with it (cancel, reschedule, mark completed or no-show), and booking for a client.

Every page goes through :func:`require_page`, the pages' one gate: not logged in -> the login page;
a user of another tenant -> 404; a role without the permission
(:mod:`bookwell.core.access.permissions`) -> 403; then the tenant's ``before_data_access``
guards. Views of clients' details are audited first when a plugin asks for it
(``data_protection``'s ``audit_views``: refused with 503 if the entry cannot be written), then
fire ``after_view``, as the staff API does. Times are shown in the tenant's zone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from babel.dates import format_datetime
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext, lazy_gettext
from flask_login import current_user
from flask_wtf import FlaskForm
from jinja2 import pass_context
from sqlalchemy import func, select
from wtforms import EmailField, IntegerField, RadioField, StringField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, Email, Length, NumberRange, Optional

from bookwell.core.access import sessions
from bookwell.core.access.permissions import (
    READ_BOOKINGS,
    BookingReach,
    Subject,
    booking_reach,
    may,
)
from bookwell.core.booking import catalogue, lifecycle
from bookwell.core.booking.availability import find_slots, local_day_bounds
from bookwell.core.booking.outcomes import OUTCOMES, mark_outcome
from bookwell.core.context import make_context, protection
from bookwell.core.context.grants import client_subject
from bookwell.core.foundation import clock, locales
from bookwell.core.pluginhost.host import PluginFailed, Refused, host_of
from bookwell.core.storage import db
from bookwell.core.storage.models import (
    Booking,
    BookingConsent,
    BookingStatus,
    Provider,
    Role,
    Service,
    Tenant,
    User,
)
from bookwell.core.web.api.auth import audit_support
from bookwell.core.web.api.schemas import sane_day
from bookwell.core.web.error_pages import error_page
from bookwell.core.web.forms import MultiLine, SingleLine, WholeNumber
from bookwell.core.web.identity import login_manager, signed_in_rows
from bookwell.core.web.pages import steps
from bookwell.core.web.request_tenant import current_tenant
from bookwell.hooks import MenuItem

log = logging.getLogger("bookwell.pages")
admin_pages = Blueprint("admin", __name__, url_prefix="/admin/<slug>")
WEEK = 7
MAX_CENTS = 2**31 - 1  # the databases' INTEGER


# --- the gate ------------------------------------------------------------------------------------


def require_page(
    slug: str,
    permission: str | tuple[str, ...],
    scope: str,
    *,
    subject: Subject = None,
    support: bool = False,
) -> tuple[Tenant, User]:
    """The tenant and the signed-in user, if they may use ``permission`` (or one of several)
    there, by their role or by an active grant on everything or on ``subject`` (a callable is
    asked only once the user is known to belong here); else the login page (not signed in,
    or platform support on a page not open to them), 404 (another tenant's user), or 403 (role,
    or a plugin's ``before_data_access`` refusal).

    ``support=True`` opens a read-only page to platform support's browser sessions in any
    tenant, as the API does: through ``before_data_access``, every attempt audited
    (``support.access``, ``support.access_refused``)."""
    tenant = current_tenant(slug)
    if tenant is None:
        abort(404)
    if not current_user.is_authenticated:
        abort(login_manager.unauthorized())
    is_support = current_user.role == Role.SUPPORT and current_user.tenant_id is None
    if current_user.tenant_id is None and not (support and is_support):
        # Platform support on a page that is not theirs: log in as this tenant's staff.
        abort(login_manager.unauthorized())
    if not is_support and current_user.tenant_id != tenant.id:
        abort(404)  # another tenant's user: not even confirm what exists here
    user = signed_in_rows().user
    now = clock.now()
    ctx = make_context(tenant, now, actor=user)
    reader = db.session()
    if not may(reader, user, tenant.id, permission, now=now, subject=subject):
        if is_support:
            audit_support(current_app._get_current_object(), ctx, REFUSED, scope, "role")
        abort(403)
    host = host_of()
    try:
        host.guard(
            "before_data_access",
            ctx,
            host.enabled_for(reader, tenant.id),
            host.broken_enabled_for(reader, tenant.id),
            scope=scope,
        )
    except Refused as refused:
        if is_support:
            audit_support(current_app._get_current_object(), ctx, REFUSED, scope, GUARD)
        # Say why (HIPAA mode keeping support out until the owner grants access, say).
        abort(error_page(403, refusal_messages(refused)))
    if is_support:
        audit_support(current_app._get_current_object(), ctx, "support.access", scope, None)
    return tenant, user


REFUSED, GUARD = "support.access_refused", "before_data_access"


def viewed(
    tenant: Tenant,
    user: User,
    subject: str,
    references: Sequence[str] | None = None,
    *,
    kind: str = "booking",
) -> None:
    """A staff member is about to see clients' details: ``subject`` is ``booking:<reference>``,
    ``client:<e-mail>`` (one client's record), or a listing (``bookings:<from>..<to>``) of the
    bookings ``references`` (``kind="client"``: a listing, ``clients:<search>``, of clients by
    e-mail). When a plugin asks for it, the view is audited first (``ViewNotAudited``, a 503, if
    it cannot be); then the plugins' ``after_view`` hear of it (best effort)."""
    if references is None and subject.startswith("client:"):
        protection.audit_view(tenant, user, "client", [subject.removeprefix("client:")])
    elif references is None:
        protection.audit_view(tenant, user, "booking", [subject.removeprefix("booking:")])
    elif references:
        protection.audit_view(tenant, user, kind, references, listing=subject)
    host = host_of()
    host.event(
        "after_view",
        make_context(tenant, clock.now(), actor=user),
        host.enabled_for(db.session(), tenant.id),
        subject=subject,
    )


def plugin_menu(tenant: Tenant, user: User) -> list[MenuItem]:
    """The menu entries the tenant's plugins add (``staff_menu``), each plugin asked on its own:
    one that fails is logged and counted, and only its entries are left out (a menu entry is not
    worth a page). An entry must point inside this site (a path starting with one ``/``).
    Platform support gets none: plugins' staff pages are not open to it."""
    if user.tenant_id is None:
        return []
    host = host_of()
    enabled = host.enabled_for(db.session(), tenant.id)
    ctx = make_context(tenant, clock.now(), actor=user)
    items: list[MenuItem] = []
    for name in sorted(enabled):
        try:
            answers = host.contributions("staff_menu", ctx, {name: enabled[name]})
        except PluginFailed:
            continue
        for _, entries in answers:
            for item in entries if isinstance(entries, list | tuple) else ():
                if (
                    isinstance(item, MenuItem)
                    and item.url.startswith("/")
                    and not item.url.startswith("//")
                ):
                    items.append(item)
                else:
                    log.warning("plugin %s: staff_menu entry %r left out", name, item)
    return items


def page(template: str, tenant: Tenant, user: User, status: int = 200, **values):
    """Render an admin page with what every admin page needs (the menu depends on the role).
    Templates, plugins' among them, see the signed-in user as ``user`` and ``current_user``: the
    frozen ``current_user``, never the account's row. A refused form's errors reach the layout
    through :func:`page_problems`."""
    return (
        render_template(
            template,
            tenant=tenant,
            user=current_user._get_current_object(),
            can=lambda permission: may(db.session(), user, tenant.id, permission, now=clock.now()),
            logout_form=FlaskForm(formdata=None),
            plugin_menu=plugin_menu(tenant, user),
            **values,
        ),
        status,
    )


@admin_pages.app_template_global()
@pass_context
def page_problems(context) -> list[tuple[str, str, str]]:
    """(field id, field label, message) of every error of the forms a page shows, for the
    layouts' error summary (announced on load, each linking to its field) and their "Error: "
    title: whatever the view calls its forms, plugins' pages' included. ``field_errors`` (a
    field's name -> messages found after validation, as the password pages give) and
    ``extra_problems`` (such tuples, from a page whose forms are not WTForms) count too."""
    values = context.get_all()
    forms = [value for value in values.values() if isinstance(value, FlaskForm)]
    found = []
    for form in forms:
        for form_field in form:
            # A hidden field (the CSRF token) has nothing on screen to link to.
            hidden = form_field.type in ("CSRFTokenField", "HiddenField")
            for message in form_field.errors if isinstance(form_field.errors, list) else ():
                found.append(("" if hidden else form_field.id, form_field.label.text, str(message)))
    # A page whose forms are not WTForms (the marketplace's settings) gives its own.
    found.extend(values.get("extra_problems") or ())
    extra = values.get("field_errors")
    for name, messages in extra.items() if isinstance(extra, dict) else ():
        owner = next((form[name] for form in forms if name in form), None)
        for message in messages:
            if owner is None:
                found.append(("", "", str(message)))
            elif (owner.id, owner.label.text, str(message)) not in found:
                found.append((owner.id, owner.label.text, str(message)))
    return found


def refusal_messages(refused: Refused) -> list[str]:
    return [
        getattr(item.refusal, "message", None) or gettext("A plugin refused this.")
        for item in refused.refusals
    ]


@admin_pages.app_template_filter("proof_moment")
def proof_moment(moment: datetime, zone) -> str:
    """``01 March 2027, 09:00:00`` (``01 mars 2027``...): a consent's instant to the second, as
    proof wants it, in the page's language and the business's zone."""
    local = moment.astimezone(zone)
    language = locales.formatting_locale(locales.current_language())
    return format_datetime(local, "dd MMMM y, HH:mm:ss", tzinfo=local.tzinfo, locale=language)


@admin_pages.app_template_filter("local")
def _local(moment: datetime, zone) -> datetime:
    return moment.astimezone(zone)


def _day_argument(name: str, default: date) -> date:
    raw = request.args.get(name, "")
    if not raw:
        return default
    try:
        return sane_day(date.fromisoformat(raw))
    except ValueError:
        abort(400)


# --- agendas -------------------------------------------------------------------------------------


def reach_of(tenant: Tenant, user: User) -> BookingReach:
    """Which of the tenant's bookings ``user`` may read now (their role, their provider, grants)."""
    return booking_reach(db.session(), user, tenant.id, clock.now())


def _agenda(tenant: Tenant, first: date, last: date, reach: BookingReach):
    """The bookings between two days that ``reach`` reads, by provider and day: every active
    provider's column for who reads everything, else only the columns of their own provider
    and of the bookings they may read."""
    start, end = local_day_bounds(first, last, tenant.zone)
    reader = db.session()
    query = (
        select(Booking)
        .where(
            Booking.tenant_id == tenant.id,
            Booking.starts_at >= start,
            Booking.starts_at < end,
        )
        .order_by(Booking.starts_at)
    )
    if not reach.everything and not reach.clients:
        query = query.where(Booking.provider_id == (reach.provider_id or 0))
    bookings = [
        booking
        for booking in reader.scalars(query)
        if reach.reads(booking.provider_id, booking.client_email)
    ]
    seen = {booking.provider_id for booking in bookings}
    shown = Provider.active.is_(True) if reach.everything else Provider.id.in_([0])
    providers = list(
        reader.scalars(
            select(Provider)
            .where(Provider.tenant_id == tenant.id)
            .where(shown | Provider.id.in_(seen | {reach.provider_id or 0}))
            .order_by(Provider.name, Provider.id)
        )
    )
    days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    grid = {provider.id: {day: [] for day in days} for provider in providers}
    for booking in bookings:
        day = booking.starts_at.astimezone(tenant.zone).date()
        grid[booking.provider_id][day].append(booking)
    return providers, days, grid


def _references(grid) -> list[str]:
    """The bookings an agenda shows (with their clients' names), in the order of their starts."""
    shown = [booking for days in grid.values() for listed in days.values() for booking in listed]
    return [booking.reference for booking in sorted(shown, key=lambda b: (b.starts_at, b.id))]


def weekday_names(width: str = "wide") -> list[str]:
    """Monday to Sunday in the page's language (``wide``: ``Lundi``; ``abbreviated``:
    ``Lun.``), capitalised as a heading or a label starts."""
    return locales.weekday_names(locales.current_language(), width)


def _today(tenant: Tenant) -> date:
    return clock.now().astimezone(tenant.zone).date()


UNLINKED = lazy_gettext(
    "Your account is not linked to a provider, so it has no bookings to show: an owner or a "
    "manager links it to yours on its page under Staff."
)
# A role's name as the staff pages show it; the stored value (``owner``...) stays English.
ROLE_NAMES = {
    Role.OWNER: lazy_gettext("Owner"),
    Role.MANAGER: lazy_gettext("Manager"),
    Role.STAFF: lazy_gettext("Staff member"),
    Role.RECEPTIONIST: lazy_gettext("Receptionist"),
    Role.CLIENT: lazy_gettext("Client"),
    Role.SUPPORT: lazy_gettext("Platform support"),
}


# The same inside a sentence ("Logged in as ann@example.com (owner)").
ROLE_WORDS = {
    Role.OWNER: lazy_gettext("owner"),
    Role.MANAGER: lazy_gettext("manager"),
    Role.STAFF: lazy_gettext("staff member"),
    Role.RECEPTIONIST: lazy_gettext("receptionist"),
    Role.CLIENT: lazy_gettext("client"),
    Role.SUPPORT: lazy_gettext("platform support"),
}


@admin_pages.app_template_filter("role_word")
def role_word(role: object) -> str:
    return str(ROLE_WORDS.get(str(role), str(role)))


@admin_pages.app_template_filter("role_name")
def role_name(role: object) -> str:
    """``manager`` -> ``Manager`` (``Responsable`` in French); a role core does not know, as is."""
    return str(ROLE_NAMES.get(str(role), str(role).capitalize()))


@admin_pages.app_template_filter("setting_choice")
def setting_choice(choice: object) -> str:
    """A plugin setting's choice as the marketplace shows it: a role by its name in the page's
    language (the plugins' role lists), any other value as the plugin declared it."""
    return str(ROLE_NAMES.get(str(choice), choice))


def _unlinked(reach: BookingReach) -> str | None:
    """Why the viewer sees no agenda: they read only their own provider's bookings but have no
    provider (``None`` when that is not so)."""
    return UNLINKED if not reach.everything and reach.provider_id is None else None


# --- one booking ---------------------------------------------------------------------------------


class CancelForm(FlaskForm):
    reason = StringField(
        lazy_gettext("Reason"), validators=[MultiLine(), DataRequired(), Length(max=500)]
    )


class OutcomeForm(FlaskForm):
    outcome = StringField(
        lazy_gettext("Outcome"), validators=[SingleLine(), DataRequired(), AnyOf(OUTCOMES)]
    )


class SlotForm(FlaskForm):
    day = StringField(
        lazy_gettext("Day"), validators=[SingleLine(), DataRequired(), Length(max=10)]
    )
    slot = RadioField(
        lazy_gettext("Free times"), validators=[DataRequired()], validate_choice=False
    )

    def chosen(self) -> tuple[int, datetime] | None:
        """The provider and start a slot value ``<provider>-<epoch>`` names, or ``None``."""
        provider, _, epoch = (self.slot.data or "").partition("-")
        if not (provider.isdigit() and epoch.isdigit()):
            return None
        return int(provider), datetime.fromtimestamp(int(epoch), UTC)


def slot_choices(
    tenant: Tenant, service: Service, day: date, reach: BookingReach | None = None, **options
) -> list[tuple[str, str]]:
    """Every free start of ``service`` on ``day`` as radio choices: value and label; only with
    the providers whose agenda ``reach`` reads entirely, when given."""
    rows = db.session().execute(
        select(Provider.id, Provider.name).where(Provider.tenant_id == tenant.id)
    )
    names = {provider_id: name for provider_id, name in rows}
    slots = find_slots(
        db.session(),
        tenant_id=tenant.id,
        zone=tenant.zone,
        longest_block_minutes=tenant.longest_block_minutes,
        service=service,
        day_from=day,
        day_to=day,
        now=clock.now(),
        **options,
    )
    return [
        (
            f"{slot.provider_id}-{slot.start_epoch}",
            f"{slot.start.astimezone(tenant.zone):%H:%M} · {names.get(slot.provider_id, '')}",
        )
        for slot in slots
        if reach is None or reach.manages(slot.provider_id)
    ]


def _find(tenant: Tenant, reference: str) -> Booking:
    try:
        return lifecycle.find_booking(db.session(), tenant.id, reference[:64])
    except lifecycle.NotFound:
        abort(404)


def _subject_of(slug: str, reference: str) -> Subject:
    """The subject a booking's checks are about, its client's record; looked up only once the
    gate knows the user belongs to the business."""

    def find() -> str | None:
        tenant = current_tenant(slug)
        email = tenant and db.session().scalar(
            select(Booking.client_email).where(
                Booking.tenant_id == tenant.id, Booking.reference == reference[:64]
            )
        )
        return client_subject(email) if email else None

    return find


def _readable(tenant: Tenant, user: User, reference: str, *, to_change: bool = False) -> Booking:
    """The booking, if ``user`` may read it (all bookings, their provider's, or a grant on its
    client) and, ``to_change``, change it (read access alone, a grant, is not enough); else
    403."""
    booking = _find(tenant, reference)
    reach = reach_of(tenant, user)
    if not reach.reads(booking.provider_id, booking.client_email):
        abort(403)
    if to_change and not reach.manages(booking.provider_id):
        abort(403)
    return booking


def _providers_of(tenant: Tenant, service: Service) -> list[tuple[int, str]]:
    return [
        (provider.id, provider.name)
        for provider in catalogue.providers_offering(db.session(), tenant.id, service.id)
    ]


def _move_steps(tenant: Tenant, user: User, booking: Booking, move_day: date | None) -> dict:
    """Rescheduling in the booking flow's steps: whom with (the same provider first), a month
    whose free days are links, then that day's times, one button each. One day's times at most,
    and one time a start: a page of every provider's week was a wall of radio buttons."""
    service = booking.service
    reach = reach_of(tenant, user)
    providers = [
        (provider_id, name)
        for provider_id, name in _providers_of(tenant, service)
        if reach.manages(provider_id)
    ]
    known = {str(provider_id) for provider_id, _ in providers}
    raw = request.args.get("provider", "")
    if (raw == "any" and reach.by_role) or raw in known:
        provider_arg = raw
    elif str(booking.provider_id) in known:
        provider_arg = str(booking.provider_id)
    else:
        provider_arg = "any" if reach.by_role or not known else next(iter(known))
    names = dict(providers)
    today = _today(tenant)
    horizon = today + timedelta(days=service.horizon_days)

    def url(**args) -> str:
        return (
            url_for(
                ".booking_details",
                slug=tenant.slug,
                reference=booking.reference,
                **{"provider": provider_arg, **args},
            )
            + "#reschedule"
        )

    def free(first: date, last: date):
        found = find_slots(
            db.session(),
            tenant_id=tenant.id,
            zone=tenant.zone,
            longest_block_minutes=tenant.longest_block_minutes,
            service=service,
            day_from=first,
            day_to=last,
            now=clock.now(),
            provider_id=None if provider_arg == "any" else int(provider_arg),
            ignore_booking_id=booking.id,
        )
        found = [slot for slot in found if reach.manages(slot.provider_id)]
        # "Anyone": one time a start, the booking's own provider first when free.
        found.sort(key=lambda slot: (slot.start_epoch, slot.provider_id != booking.provider_id))
        seen: set[int] = set()
        kept = []
        for slot in found:
            where_it_is = (slot.start, slot.provider_id) == (booking.starts_at, booking.provider_id)
            if slot.start_epoch not in seen and not where_it_is:
                seen.add(slot.start_epoch)
                kept.append(slot)
        return kept

    steps_context = {
        "providers": [(str(provider_id), name) for provider_id, name in providers]
        + ([("any", gettext("Anyone free"))] if reach.by_role else []),
        "provider_arg": provider_arg,
        "provider_url": lambda value: url(provider=value),
        "day_url": lambda day: url(day=day.isoformat()),
        "month_url": lambda month: url(month=month),
    }
    day = move_day or steps.parse_day(request.args.get("day", ""))
    if day is not None and today <= day <= horizon:
        times = [
            (
                f"{slot.provider_id}-{slot.start_epoch}",
                f"{slot.start.astimezone(tenant.zone):%H:%M}"
                + (f" · {names.get(slot.provider_id, '')}" if provider_arg == "any" else ""),
            )
            for slot in free(day, day)
        ]
        return {
            **steps_context,
            "stage": "times",
            "day": day,
            "day_label": locales.long_day(day, locales.current_language()),
            "times": times,
            "back_url": url(month=f"{day:%Y-%m}"),
        }
    around = max(booking.starts_at.astimezone(tenant.zone).date(), today)
    month = steps.parse_month(request.args.get("month", ""), around)

    def free_days(first: date, last: date) -> set[date]:
        return {slot.start.astimezone(tenant.zone).date() for slot in free(first, last)}

    view = steps.month_view(month, today, service.horizon_days, free_days)
    return {**steps_context, "stage": "month", "view": view}


def _consent_links(tenant: Tenant) -> dict[tuple[str, str, str], str]:
    """The page of each consent the plugins ask for now, by (plugin, consent, version): a
    consent given in that version links to the text accepted. Only a link: a plugin that fails
    here costs the page its links, never the booking's details."""
    try:
        required = lifecycle.requirements(current_app._get_current_object(), tenant, clock.now())
    except PluginFailed:
        return {}
    return {
        (plugin, consent.id, consent.version): consent.url
        for plugin, consent in required
        if consent.url
    }


def _booking_page(
    tenant, user, booking, *, status=200, cancel=None, outcome=None, move=None, errors=()
):
    move_day = None
    if move is None:
        move = SlotForm(formdata=None)
    else:
        move_day = _parse_day(move.day.data)
    changeable = booking.status == BookingStatus.CONFIRMED
    moving = None
    if changeable and booking.starts_at > clock.now():
        moving = _move_steps(tenant, user, booking, move_day)
    consents = list(
        db.session().scalars(
            select(BookingConsent)
            .where(BookingConsent.booking_id == booking.id)
            .order_by(BookingConsent.id)
        )
    )
    viewed(tenant, user, f"booking:{booking.reference}")
    return page(
        "admin/booking.html",
        tenant,
        user,
        status=status,
        booking=booking,
        consents=consents,
        consent_links=_consent_links(tenant) if consents else {},
        now=clock.now(),
        changeable=changeable,
        cancel_form=cancel or CancelForm(formdata=None),
        outcome_form=outcome or OutcomeForm(formdata=None),
        move_form=move,
        moving=moving,
        errors=list(errors),
    )


def _parse_day(raw: str | None) -> date | None:
    try:
        return sane_day(date.fromisoformat(raw or ""))
    except ValueError:
        return None


@admin_pages.get("/bookings/<reference>")
def booking_details(slug: str, reference: str):
    tenant, user = require_page(
        slug, READ_BOOKINGS, "booking", subject=_subject_of(slug, reference), support=True
    )
    return _booking_page(tenant, user, _readable(tenant, user, reference))


# --- one client's record -------------------------------------------------------------------------

MAX_EMAIL = 254


@admin_pages.get("/clients/<email>")
def client_record(slug: str, email: str):
    """One client's bookings (by e-mail, whatever its case), those the viewer may read."""
    email = email.strip()
    if not (0 < len(email) <= MAX_EMAIL and "@" in email) or not email.isprintable():
        abort(404)
    subject = client_subject(email)
    tenant, user = require_page(slug, READ_BOOKINGS, "client", subject=subject, support=True)
    reach = reach_of(tenant, user)
    rows = db.session().scalars(
        select(Booking)
        .where(Booking.tenant_id == tenant.id, func.lower(Booking.client_email) == email.lower())
        .order_by(Booking.starts_at.desc())
    )
    bookings = [
        booking
        for booking in rows
        if client_subject(booking.client_email) == subject
        and reach.reads(booking.provider_id, booking.client_email)
    ]
    viewed(tenant, user, subject)
    now = clock.now()
    upcoming = sorted(
        (booking for booking in bookings if booking.starts_at >= now),
        key=lambda booking: (booking.starts_at, booking.id),
    )
    phones = [booking.client_phone for booking in bookings if booking.client_phone]
    return page(
        "admin/client.html",
        tenant,
        user,
        email=email,
        name=bookings[0].client_name if bookings else None,
        phone=phones[0] if phones else None,
        bookings=bookings,
        upcoming=upcoming,
        past=[booking for booking in bookings if booking.starts_at < now],
        unlinked=None if subject in reach.clients else _unlinked(reach),
    )


def _done(tenant: Tenant, booking: Booking, message: str):
    flash(message)
    return redirect(url_for(".booking_details", slug=tenant.slug, reference=booking.reference))


@admin_pages.post("/bookings/<reference>/cancel")
def cancel(slug: str, reference: str):
    tenant, user = require_page(
        slug, "bookings.manage", "booking", subject=_subject_of(slug, reference)
    )
    booking = _readable(tenant, user, reference, to_change=True)
    form = CancelForm()
    if not form.validate_on_submit():
        return _booking_page(tenant, user, booking, status=422, cancel=form)
    try:
        lifecycle.cancel_booking(
            current_app._get_current_object(),
            tenant_id=tenant.id,
            reference=booking.reference,
            authorise=lambda _booking: None,  # require_page() above is the check for staff
            now=clock.now(),
            reason=form.reason.data.strip(),
            actor=user,
        )
    except lifecycle.BookingError as error:
        return _booking_page(
            tenant, user, booking, status=error.status, cancel=form, errors=[error.message]
        )
    except Refused as refused:
        return _booking_page(
            tenant, user, booking, status=409, cancel=form, errors=refusal_messages(refused)
        )
    return _done(tenant, booking, gettext("The booking is cancelled."))


@admin_pages.post("/bookings/<reference>/reschedule")
def reschedule(slug: str, reference: str):
    tenant, user = require_page(
        slug, "bookings.manage", "booking", subject=_subject_of(slug, reference)
    )
    booking = _readable(tenant, user, reference, to_change=True)
    form = SlotForm()
    if not form.validate_on_submit():
        return _booking_page(tenant, user, booking, status=422, move=form)
    chosen = form.chosen()
    if chosen is None:
        form.slot.errors = [gettext("Choose one of the free times.")]
        return _booking_page(tenant, user, booking, status=422, move=form)
    provider_id, start = chosen
    if not reach_of(tenant, user).manages(provider_id):
        form.slot.errors = [gettext("You may move this booking only within your own agenda.")]
        return _booking_page(tenant, user, booking, status=403, move=form)
    try:
        lifecycle.reschedule_booking(
            current_app._get_current_object(),
            tenant_id=tenant.id,
            reference=booking.reference,
            authorise=lambda _booking: None,  # require_page() above is the check for staff
            start=start,
            provider_id=provider_id,
            now=clock.now(),
            actor=user,
        )
    except lifecycle.BookingError as error:
        form.slot.errors = [error.message]
        return _booking_page(tenant, user, booking, status=error.status, move=form)
    except Refused as refused:
        form.slot.errors = refusal_messages(refused)
        return _booking_page(tenant, user, booking, status=409, move=form)
    return _done(tenant, booking, gettext("The booking is moved."))


@admin_pages.post("/bookings/<reference>/outcome")
def outcome(slug: str, reference: str):
    tenant, user = require_page(
        slug, "bookings.manage", "booking", subject=_subject_of(slug, reference)
    )
    booking = _readable(tenant, user, reference, to_change=True)
    form = OutcomeForm()
    if not form.validate_on_submit():
        return _booking_page(tenant, user, booking, status=422, outcome=form)
    try:
        mark_outcome(
            current_app._get_current_object(),
            tenant_id=tenant.id,
            reference=booking.reference,
            outcome=form.outcome.data,
            now=clock.now(),
            actor=user,
        )
    except lifecycle.BookingError as error:
        return _booking_page(
            tenant, user, booking, status=error.status, outcome=form, errors=[error.message]
        )
    marked = (
        gettext("The booking is marked completed.")
        if form.outcome.data == BookingStatus.COMPLETED
        else gettext("The booking is marked no-show.")
    )
    return _done(tenant, booking, marked)


# --- booking for a client ------------------------------------------------------------------------


class NewBookingForm(SlotForm):
    service = StringField(
        lazy_gettext("Service"), validators=[SingleLine(), DataRequired(), Length(max=20)]
    )
    name = StringField(
        lazy_gettext("Client's name"), validators=[SingleLine(), DataRequired(), Length(max=200)]
    )
    email = EmailField(
        lazy_gettext("Client's e-mail"),
        validators=[SingleLine(), DataRequired(), Email(), Length(max=254)],
    )
    phone = StringField(
        lazy_gettext("Phone"), validators=[SingleLine(), Optional(), Length(max=40)]
    )
    notes = TextAreaField(
        lazy_gettext("Notes"), validators=[MultiLine(), Optional(), Length(max=2000)]
    )
    # What the client already paid, in cents; core checks it against the service's price.
    prepaid_cents = IntegerField(
        lazy_gettext("Already paid (cents)"),
        validators=[WholeNumber(), Optional(), NumberRange(min=0, max=MAX_CENTS)],
    )


def _services(tenant: Tenant) -> list[Service]:
    return list(
        db.session().scalars(
            select(Service)
            .where(Service.tenant_id == tenant.id, Service.active.is_(True))
            .order_by(Service.name, Service.id)
        )
    )


def _new_booking_page(tenant, user, form, service, day, *, status=200, errors=()):
    reach = reach_of(tenant, user)
    if service is not None:
        form.slot.choices = slot_choices(tenant, service, day, reach)
    if _unlinked(reach):
        errors = [UNLINKED, *errors]  # nothing to choose from: say why
    return page(
        "admin/new_booking.html",
        tenant,
        user,
        status=status,
        form=form,
        services=_services(tenant),
        service=service,
        day=day,
        consents=lifecycle.requirements(current_app._get_current_object(), tenant, clock.now()),
        errors=list(errors),
    )


def _service(tenant: Tenant, raw: str | None) -> Service | None:
    if not (raw or "").isdigit():
        return None
    return db.session().scalar(
        select(Service).where(
            Service.id == int(raw), Service.tenant_id == tenant.id, Service.active.is_(True)
        )
    )


@admin_pages.get("/bookings/new")
def new_booking(slug: str):
    tenant, user = require_page(slug, "bookings.manage", "bookings")
    day = _day_argument("day", _today(tenant))
    service = _service(tenant, request.args.get("service"))
    if service is None and "service" not in request.args:
        service = next(iter(_services(tenant)), None)  # the first, to show free times at once
    form = NewBookingForm(
        formdata=None, day=day.isoformat(), service=str(service.id) if service else ""
    )
    return _new_booking_page(tenant, user, form, service, day)


@admin_pages.post("/bookings/new")
def book_for_client(slug: str):
    tenant, user = require_page(slug, "bookings.manage", "bookings")
    form = NewBookingForm()
    service = _service(tenant, form.service.data)
    day = _parse_day(form.day.data) or _today(tenant)
    if service is None:
        form.service.errors = [gettext("Choose a service.")]
        return _new_booking_page(tenant, user, form, None, day, status=422)
    valid = form.validate_on_submit()
    chosen = form.chosen()
    if valid and chosen is None:
        form.slot.errors = [gettext("Choose one of the free times.")]
    if not valid or chosen is None:
        return _new_booking_page(tenant, user, form, service, day, status=422)
    provider_id, start = chosen
    reach = reach_of(tenant, user)
    if not reach.manages(provider_id):
        form.slot.errors = [gettext("You may book only in your own agenda.")]
        return _new_booking_page(tenant, user, form, service, day, status=403)
    try:
        booking, _token = lifecycle.create_booking(
            current_app._get_current_object(),
            tenant_id=tenant.id,
            service_id=service.id,
            provider_id=provider_id,
            start=start,
            client=lifecycle.ClientDetails(
                name=form.name.data.strip(),
                email=form.email.data.strip(),
                phone=(form.phone.data or "").strip() or None,
                notes=(form.notes.data or "").strip() or None,
            ),
            now=clock.now(),
            consents=tuple(request.form.getlist("consents"))[:50],
            actor=user,
            prepaid_cents=form.prepaid_cents.data or 0,
        )
    except lifecycle.InvalidAmount as error:
        form.prepaid_cents.errors = [error.message]
        return _new_booking_page(tenant, user, form, service, day, status=422)
    except lifecycle.SlotUnavailable as error:
        form.slot.errors = [error.message]
        return _new_booking_page(tenant, user, form, service, day, status=409)
    except lifecycle.BookingError as error:
        return _new_booking_page(
            tenant, user, form, service, day, status=error.status, errors=[error.message]
        )
    except Refused as refused:
        return _new_booking_page(
            tenant, user, form, service, day, status=409, errors=refusal_messages(refused)
        )
    return _done(tenant, booking, gettext("The booking is made."))


# --- my sessions ---------------------------------------------------------------------------------


@admin_pages.get("/sessions")
def my_sessions(slug: str):
    tenant, user = require_page(slug, READ_BOOKINGS, "sessions")
    return page(
        "admin/sessions.html",
        tenant,
        user,
        sessions=sessions.active_sessions(db.session(), user.id, clock.now()),
        form=FlaskForm(formdata=None),
    )


def init_app(app: Flask) -> None:
    from bookwell.core.web.pages import (  # noqa: F401  (their routes join admin_pages)
        admin_agenda,
        admin_audit,
        admin_catalogue,
        admin_clients,
        admin_staff,
    )

    app.register_blueprint(admin_pages)
