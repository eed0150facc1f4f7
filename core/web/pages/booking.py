"""The client's booking pages at ``/book/<tenant>/``, in the tenant's theme, without JavaScript.

service -> provider (or "any") -> day (a month calendar) -> slot -> details and consents ->
confirmation; then a private manage page (``/book/<slug>/manage/<reference>?token=...``) to
cancel or reschedule. Every change goes through :mod:`bookwell.core.booking.lifecycle`, exactly
as the API does, so a plugin's rule holds on both. The token only ever appears in the manage URL
and in hidden form fields.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

import icalendar
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    make_response,
    redirect,
    request,
    url_for,
)
from flask_babel import gettext, lazy_gettext
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import EmailField, HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, Length, Optional, Regexp

from bookwell.core.booking import catalogue, idempotency, lifecycle
from bookwell.core.booking.availability import Slot, find_slots, offered_slots
from bookwell.core.foundation import clock, locales
from bookwell.core.foundation.money import format_money
from bookwell.core.pluginhost.host import Refused
from bookwell.core.storage import db
from bookwell.core.storage.db import LockTimeout
from bookwell.core.storage.models import (
    Booking,
    BookingStatus,
    Provider,
    Service,
    Tenant,
    WorkingHours,
)
from bookwell.core.web import security_headers, themes
from bookwell.core.web.forms import MultiLine, SingleLine
from bookwell.core.web.pages import steps
from bookwell.core.web.ratelimits import rate_limited
from bookwell.core.web.request_tenant import current_tenant

booking_pages = Blueprint("booking_pages", __name__, url_prefix="/book/<slug>")

TAKEN_NOTE = lazy_gettext("That time was just taken — please pick another.")
ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?$")
MAX_ID = 2**31 - 1
DONE_NOTES = {
    "cancelled": lazy_gettext("Your booking is cancelled."),
    "rescheduled": lazy_gettext("Your booking has moved to its new time."),
}
FORM_KEY = re.compile(r"^[A-Za-z0-9_-]{16,100}$")
SENT_BEFORE = lazy_gettext(
    "You already sent this form with other details. To make another booking, check the "
    "details and send them again."
)
# A booking's status as people read it (the stored values are for programs).
STATUS_WORDS = {
    BookingStatus.CONFIRMED: lazy_gettext("Confirmed"),
    BookingStatus.CANCELLED: lazy_gettext("Cancelled"),
    BookingStatus.COMPLETED: lazy_gettext("Completed"),
    BookingStatus.NO_SHOW: lazy_gettext("No-show"),
}


def strip_text(value):
    """A form filter: surrounding spaces never count (a name of spaces is no name)."""
    return value.strip() if isinstance(value, str) else value


class DetailsForm(FlaskForm):
    name = StringField(
        lazy_gettext("Name"),
        validators=[
            SingleLine(),
            DataRequired(lazy_gettext("Please enter your name.")),
            Length(max=200),
        ],
        filters=[strip_text],
    )
    email = EmailField(
        lazy_gettext("E-mail"),
        validators=[
            SingleLine(),
            DataRequired(lazy_gettext("Please enter your e-mail address.")),
            Email(lazy_gettext("Please enter a valid e-mail address.")),
            Length(max=254),
        ],
        filters=[strip_text],
    )
    phone = StringField(
        lazy_gettext("Phone (optional)"),
        validators=[
            SingleLine(),
            Optional(),
            Length(max=40),
            Regexp(
                r"^[0-9+()./ -]*$", message=lazy_gettext("Use digits, spaces and + ( ) . / - only.")
            ),
        ],
        filters=[strip_text],
    )
    notes = TextAreaField(
        lazy_gettext("Notes (optional)"),
        validators=[MultiLine(), Optional(), Length(max=2000)],
    )
    # The form's own idempotency key, new with each form shown: the same form sent twice (a
    # double click, or back and send again) books once and shows that one booking.
    form_key = HiddenField(validators=[SingleLine(), DataRequired(), Regexp(FORM_KEY)])


class TokenForm(FlaskForm):
    token = StringField(validators=[SingleLine(), DataRequired(), Length(max=200)])


class RescheduleForm(TokenForm):
    start = StringField(
        validators=[
            SingleLine(),
            DataRequired(lazy_gettext("Please choose a new time.")),
            Length(max=40),
        ]
    )


# --- helpers ---------------------------------------------------------------------------------


def _tenant(slug: str) -> Tenant:
    tenant = current_tenant(slug)
    if tenant is None:
        abort(404)
    return tenant


def _page(tenant: Tenant, template: str, status: int = 200, **context: Any) -> Response:
    # A page answering a refused request says so first in its title (WCAG 3.3.1): a screen
    # reader reads the title before anything else.
    context.setdefault("refused", status >= 400)
    body = themes.render(
        tenant.theme,
        template,
        tenant=tenant,
        when=lambda instant: _when(tenant, instant),
        time_of=lambda instant: locales.clock_time(
            instant, locales.current_language(), tenant.zone
        ),
        field_messages=field_messages,
        form_problems=form_problems,
        **context,
    )
    return make_response(body, status)


def field_messages(form: FlaskForm, name: str, field_errors: dict | None = None) -> list[str]:
    """What is wrong with one field: its validators' messages, then those a plugin or the
    domain gave it (``field_errors``)."""
    return [*form[name].errors, *(field_errors or {}).get(name, [])]


def form_problems(
    form: FlaskForm | None = None,
    field_errors: dict | None = None,
    errors: Any = (),
    consent_errors: dict | None = None,
    consents: Any = (),
) -> list[tuple[str | None, str]]:
    """Everything a refused form got wrong, for the summary at its top: ``(the id of the field
    to go to, or None, message)``, in the page's order."""
    problems: list[tuple[str | None, str]] = [(None, message) for message in errors if message]
    if form is not None:
        for field in form:
            if field.type in ("CSRFTokenField", "HiddenField"):
                continue  # a stale form is said in ``errors``, in words a person can act on
            for message in field_messages(form, field.name, field_errors):
                problems.append((field.id, message))
    for index, consent in enumerate(consents, 1):
        message = (consent_errors or {}).get(consent.id)
        if message:
            problems.append((f"consent-{index}", message))
    return problems


def _utc_iso(instant: datetime) -> str:
    """``2027-03-02T09:00:00Z``: what a ``<time datetime>`` holds, for the page's script."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _when(tenant: Tenant, instant: datetime) -> str:
    return locales.long_moment(instant, locales.current_language(), tenant.zone)


def _day_label(day: date) -> str:
    return locales.long_day(day, locales.current_language())


def _int_arg(name: str) -> int:
    raw = request.args.get(name, "")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10 and 1 <= int(raw) <= MAX_ID):
        abort(404)
    return int(raw)


def _service(tenant: Tenant, service_id: int) -> Service:
    service = db.session().scalar(
        select(Service).where(
            Service.id == service_id, Service.tenant_id == tenant.id, Service.active.is_(True)
        )
    )
    if service is None:
        abort(404)
    return service


def _providers_of(tenant: Tenant, service: Service) -> list[Provider]:
    return catalogue.providers_offering(db.session(), tenant.id, service.id)


def _choice(tenant: Tenant) -> tuple[Service, Provider | None, str]:
    """The service and provider ("any" is ``None``) a page's query names."""
    service = _service(tenant, _int_arg("service"))
    raw = request.args.get("provider", "any")
    if raw == "any":
        return service, None, "any"
    provider_id = _int_arg("provider")
    for provider in _providers_of(tenant, service):
        if provider.id == provider_id:
            return service, provider, str(provider.id)
    abort(404)


def _today(tenant: Tenant) -> date:
    return clock.now().astimezone(tenant.zone).date()


def _slots(
    tenant: Tenant,
    service: Service,
    provider: Provider | None,
    day_from: date,
    day_to: date,
    ignore_booking_id: int | None = None,
) -> list[Slot]:
    return offered_slots(
        db.session(),
        tenant,
        service=service,
        day_from=day_from,
        day_to=day_to,
        now=clock.now(),
        provider_id=provider.id if provider else None,
        ignore_booking_id=ignore_booking_id,
    )


def _one_per_start(slots: list[Slot]) -> list[Slot]:
    """With "any" provider: one entry per start, the first free provider's."""
    seen: set[int] = set()
    kept = []
    for slot in slots:
        if slot.start_epoch not in seen:
            seen.add(slot.start_epoch)
            kept.append(slot)
    return kept


# The booking flow's steps as the step indicator names them; the manage page is apart.
STEP_NAMES = (
    lazy_gettext("Service"),
    lazy_gettext("Who"),
    lazy_gettext("Day"),
    lazy_gettext("Time"),
    lazy_gettext("Details"),
    lazy_gettext("Done"),
)
SERVICE, WHO, DAY, TIME, DETAILS, DONE = range(len(STEP_NAMES))
# The first free time is looked for a week ahead first, then over ever longer spans: most
# businesses have one soon, and a fully booked one must not cost a year's search per page.
FIRST_SEARCH_DAYS = 7


@dataclass(frozen=True)
class Step:
    number: int
    name: str
    url: str | None  # a way back to a step already taken; none ahead, none once booked
    current: bool
    done: bool


@dataclass(frozen=True)
class Summary:
    """What the client chose so far, shown beside every step."""

    service: str | None = None
    provider: str | None = None
    start: datetime | None = None
    price: str | None = None


def _price(tenant: Tenant, cents: int) -> str | None:
    # A business that sets no prices shows none, rather than "free".
    return format_money(cents, tenant.currency) if cents else None


def _flow(
    tenant: Tenant,
    current: int,
    service: Service | None = None,
    provider: Provider | None = None,
    provider_arg: str | None = None,
    day: date | None = None,
    start: datetime | None = None,
    price_cents: int | None = None,
) -> dict[str, Any]:
    """The step indicator and the running summary of a page of the flow."""
    choice = {"slug": tenant.slug}
    urls: list[str | None] = [url_for(".start", **choice), None, None, None, None, None]
    if service is not None:
        choice["service"] = service.id
        urls[WHO] = url_for(".start", **choice)
        if provider_arg is not None:
            choice["provider"] = provider_arg
            shown_month = f"{day:%Y-%m}" if day else None
            urls[DAY] = url_for(".day", **choice, month=shown_month)
            if day is not None:
                urls[TIME] = url_for(".slots", **choice, date=day.isoformat())
    steps = [
        Step(
            index + 1,
            str(name),
            urls[index] if index < current < DONE else None,
            index == current,
            index < current,
        )
        for index, name in enumerate(STEP_NAMES)
    ]
    who = None
    if provider is not None:
        who = provider.name
    elif provider_arg == "any":
        who = gettext("Anyone available")
    cents = price_cents if price_cents is not None else service.price_cents if service else 0
    summary = Summary(
        service=service.name if service else None,
        provider=who,
        start=start,
        price=_price(tenant, cents),
    )
    return {"flow_steps": steps, "flow_summary": summary}


def opening_hours(tenant: Tenant) -> list[tuple[str, list[str]]]:
    """Each weekday's opening times, the union of the active providers' working hours (kept in
    the tenant's wall-clock time): ``[("Monday", ["09:00–12:00", "14:00–18:00"]), ...]``, an
    empty list for a closed day; no rows at all when no hours are set."""
    rows = db.session().execute(
        select(WorkingHours.weekday, WorkingHours.starts, WorkingHours.ends)
        .join(Provider, Provider.id == WorkingHours.provider_id)
        .where(Provider.tenant_id == tenant.id, Provider.active.is_(True))
        .order_by(WorkingHours.weekday, WorkingHours.starts)
    )
    spans: dict[int, list[list[time]]] = {weekday: [] for weekday in range(7)}
    seen = False
    for weekday, starts, ends in rows:
        seen = True
        day = spans[weekday]
        if day and starts <= day[-1][1]:  # overlaps or touches the last span: one opening
            day[-1][1] = max(day[-1][1], ends)
        else:
            day.append([starts, ends])
    if not seen:
        return []
    language = locales.current_language()
    names = locales.weekday_names(language)
    return [
        (
            names[weekday],
            [
                f"{locales.wall_clock(opens, language)}–{locales.wall_clock(closes, language)}"
                for opens, closes in day
            ],
        )
        for weekday, day in spans.items()
    ]


def _first_free(
    tenant: Tenant, service: Service, provider: Provider | None, after: date | None = None
) -> Slot | None:
    """The earliest free start within the service's horizon, or ``None``; ``after``: the days
    up to it are known to have none (the calendar on the page searched them)."""
    today = _today(tenant)
    last = today + timedelta(days=service.horizon_days)
    first = after + timedelta(days=1) if after else today
    span = FIRST_SEARCH_DAYS
    while first <= last:
        until = min(first + timedelta(days=span - 1), last)
        found = _slots(tenant, service, provider, first, until)
        if found:
            return min(found, key=lambda slot: slot.start_epoch)
        first, span = until + timedelta(days=1), span * 4
    return None


def _details_url(tenant: Tenant, service: Service, provider_arg: str, start: datetime) -> str:
    return url_for(
        "booking_pages.details",
        slug=tenant.slug,
        service=service.id,
        provider=provider_arg,
        start=start.astimezone(tenant.zone).isoformat(),
    )


def _parse_start(raw: str | None) -> datetime | None:
    if not raw or len(raw) > 40:
        return None
    try:
        start = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if start.tzinfo is None or not 1970 <= start.year <= 2200:
        return None
    return start


def _frame_origins(tenant: Tenant) -> list[str]:
    try:
        origins = json.loads(tenant.frame_origins or "[]")
    except ValueError:
        return []
    if not isinstance(origins, list):
        return []
    return [origin for origin in origins if isinstance(origin, str) and ORIGIN.match(origin)]


def embedding_policy(tenant: Tenant) -> str:
    """The app's CSP with ``frame-ancestors`` set from the tenant's allowed origins."""
    origins = _frame_origins(tenant)
    ancestors = "frame-ancestors " + (" ".join(["'self'", *origins]) if origins else "'none'")
    return security_headers.CONTENT_SECURITY_POLICY.replace("frame-ancestors 'none'", ancestors)


@booking_pages.after_request
def allow_the_tenants_frames(response: Response) -> Response:
    tenant = g.get("tenant")
    if tenant is not None and response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = embedding_policy(tenant)
    return response


def status_word(status: object) -> str:
    """``confirmed`` -> ``Confirmed``; a status core does not know yet, readable all the same."""
    return str(
        STATUS_WORDS.get(str(status), str(status).replace("-", " ").replace("_", " ").capitalize())
    )


def init_app(app: Flask) -> None:
    app.add_template_filter(status_word, "status_word")  # client pages, staff pages and mail
    themes.init_app(app)
    app.register_blueprint(booking_pages)


@booking_pages.errorhandler(Refused)
def refused_page(refused: Refused):
    """A guard that refused the whole request (``before_request``): said plainly, in the theme."""
    tenant = g.get("tenant")
    status = getattr(refused.first, "status", 403)
    status = status if 400 <= status < 600 else 403
    if tenant is None:
        return Response(_refusal_text(refused), status=status, mimetype="text/plain")
    return _page(tenant, "book/problem.html", status, messages=_messages(refused))


@booking_pages.errorhandler(LockTimeout)
def busy_page(_error: LockTimeout):
    tenant = g.get("tenant")
    message = gettext("We are busy right now; nothing was changed. Please try again.")
    if tenant is None:
        response = Response(message, status=503, mimetype="text/plain")
    else:
        response = _page(tenant, "book/problem.html", 503, messages=[message])
    response.headers["Retry-After"] = "2"
    return response


def _messages(refused: Refused) -> list[str]:
    return [
        getattr(item.refusal, "message", None) or gettext("Refused.") for item in refused.refusals
    ]


# --- choosing ----------------------------------------------------------------------------------


@booking_pages.get("/")
def start(slug: str):
    tenant = _tenant(slug)
    if "service" not in request.args:
        services = db.session().scalars(
            select(Service)
            .where(Service.tenant_id == tenant.id, Service.active.is_(True))
            .order_by(Service.name, Service.id)
        )
        return _page(
            tenant,
            "book/services.html",
            services=list(services),
            hours=opening_hours(tenant),
            **_flow(tenant, SERVICE),
        )
    service = _service(tenant, _int_arg("service"))
    soonest = _first_free(tenant, service, None)
    return _page(
        tenant,
        "book/providers.html",
        service=service,
        providers=_providers_of(tenant, service),
        soonest=soonest.start if soonest else None,
        soonest_url=_details_url(tenant, service, "any", soonest.start) if soonest else None,
        **_flow(tenant, WHO, service),
    )


@booking_pages.get("/day")
def day(slug: str):
    tenant = _tenant(slug)
    service, provider, provider_arg = _choice(tenant)
    today = _today(tenant)
    month = steps.parse_month(request.args.get("month", ""), today)

    # The month shown from today holds the first free time if it has any: one search, not two
    # (each asks the plugins' unavailable_times once more).
    searched: dict[str, Any] = {}

    def free_days(first: date, last: date) -> set[date]:
        found = _slots(tenant, service, provider, first, last)
        if first == today:
            searched.update(until=last, slots=found)
        return {slot.start.astimezone(tenant.zone).date() for slot in found}

    def choice_url(endpoint: str, **args: Any) -> str:
        return url_for(
            endpoint, slug=tenant.slug, service=service.id, provider=provider_arg, **args
        )

    view = steps.month_view(month, today, service.horizon_days, free_days)
    if searched.get("slots"):
        soonest = min(searched["slots"], key=lambda slot: slot.start_epoch)
    else:
        soonest = _first_free(tenant, service, provider, after=searched.get("until"))
    return _page(
        tenant,
        "book/day.html",
        service=service,
        provider=provider,
        provider_arg=provider_arg,
        view=view,
        day_url=lambda chosen: choice_url(".slots", date=chosen.isoformat()),
        month_url=lambda chosen: choice_url(".day", month=chosen),
        soonest=soonest.start if soonest else None,
        soonest_url=_details_url(tenant, service, provider_arg, soonest.start) if soonest else None,
        **_flow(tenant, DAY, service, provider, provider_arg),
    )


def _day_arg() -> date:
    chosen = steps.parse_day(request.args.get("date", ""))
    if chosen is None:
        abort(404)
    return chosen


@booking_pages.get("/slots")
def slots(slug: str):
    tenant = _tenant(slug)
    service, provider, provider_arg = _choice(tenant)
    chosen = _day_arg()
    found = _one_per_start(_slots(tenant, service, provider, chosen, chosen))
    return _page(
        tenant,
        "book/slots.html",
        service=service,
        provider=provider,
        provider_arg=provider_arg,
        day=chosen,
        day_label=_day_label(chosen),
        month=f"{chosen:%Y-%m}",
        slots=[slot.start.astimezone(tenant.zone) for slot in found],
        time_url=lambda start: url_for(
            ".details",
            slug=tenant.slug,
            service=service.id,
            provider=provider_arg,
            start=start.isoformat(),
        ),
        note=TAKEN_NOTE if request.args.get("taken") else None,
        **_flow(tenant, TIME, service, provider, provider_arg, chosen),
    )


# --- details and confirmation -----------------------------------------------------------------


def _back_to_slots(tenant: Tenant, service: Service, provider_arg: str, start: datetime):
    return redirect(
        url_for(
            ".slots",
            slug=tenant.slug,
            service=service.id,
            provider=provider_arg,
            date=start.astimezone(tenant.zone).date().isoformat(),
            taken=1,
        )
    )


def _field_of(refusal_field: str | None, form: FlaskForm) -> str | None:
    if not refusal_field:
        return None
    name = refusal_field.removeprefix("client.")
    return name if name in form._fields and name != "csrf_token" else None


def _form_fingerprint(service: Service, provider_arg: str, start: datetime, form, given) -> str:
    """What the details form asked for: the same key with other details is another request."""
    return idempotency.request_hash(
        "POST",
        request.path,
        {
            "service": service.id,
            "provider": provider_arg,
            "start": start.isoformat(),
            "name": form.name.data,
            "email": form.email.data,
            "phone": form.phone.data or "",
            "notes": form.notes.data or "",
            "consents": sorted(given),
        },
    )


def _stored_key(form: DetailsForm) -> str:
    # Apart from the API's keys, which their callers choose, in the same table.
    return f"form:{form.form_key.data}"


def _answered_before(tenant: Tenant, key: str, fingerprint: str, now: datetime, fresh=False):
    """The first answer to this form (a Replay), a KeyReused, or ``None`` if it was never sent."""
    try:
        if fresh:
            # Another connection committed the key while we waited: read past our snapshot.
            with db.fresh_session() as session:
                idempotency.lookup(session, tenant.id, key, fingerprint, now)
        else:
            idempotency.lookup(db.session(), tenant.id, key, fingerprint, now)
    except (idempotency.Replay, idempotency.KeyReused) as answered:
        return answered
    return None


@booking_pages.route("/details", methods=["GET", "POST"])
@rate_limited("booking")
def details(slug: str):
    tenant = _tenant(slug)
    service, provider, provider_arg = _choice(tenant)
    start = _parse_start(request.args.get("start"))
    if start is None:
        abort(404)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    now = clock.now()
    required = [consent for _, consent in lifecycle.requirements(app, tenant, now)]
    form = DetailsForm()
    given = tuple(value for value in request.form.getlist("consents")[:50] if 0 < len(value) <= 100)
    context: dict[str, Any] = {
        "service": service,
        "provider": provider,
        "provider_arg": provider_arg,
        "start": start,
        "form": form,
        "consents": required,
        "given": set(given),
        "consent_errors": {},
        "field_errors": {},
        "errors": [],
        **_flow(
            tenant,
            DETAILS,
            service,
            provider,
            provider_arg,
            start.astimezone(tenant.zone).date(),
            start,
        ),
    }

    def again(status: int) -> Response:
        return _page(tenant, "book/details.html", status, **context)

    def answer_again(answered: Exception) -> Response:
        """The form was sent before: show its booking again, never make a second one."""
        if isinstance(answered, idempotency.Replay):
            return _to_confirmation(tenant, answered.body["reference"], answered.body["token"])
        form.form_key.data = secrets.token_urlsafe(24)  # a new form, for another booking
        context["errors"].append(SENT_BEFORE)
        return again(409)

    valid = request.method == "POST" and form.validate_on_submit()
    if not FORM_KEY.match(form.form_key.data or ""):
        form.form_key.data = secrets.token_urlsafe(24)  # a form shown anew, or one without
    fingerprint = _form_fingerprint(service, provider_arg, start, form, given) if valid else ""
    if valid:
        answered = _answered_before(tenant, _stored_key(form), fingerprint, now)
        if answered is not None:
            return answer_again(answered)

    # A time no longer free (a stale link, or taken meanwhile): back to the day's times.
    local_day = start.astimezone(tenant.zone).date()
    candidates = [
        slot.provider_id
        for slot in _slots(tenant, service, provider, local_day, local_day)
        if slot.start_epoch == start.timestamp()
    ]
    if not candidates:
        return _back_to_slots(tenant, service, provider_arg, start)
    if request.method == "GET":
        return again(200)
    if not valid:
        if "csrf_token" in form.errors or "form_key" in form.errors:
            context["errors"].append(
                gettext("Your form expired; please check the details and send again.")
            )
        context["consent_errors"] = {
            consent.id: gettext("Please tick this box to continue.")
            for consent in required
            if consent.id not in given
        }
        return again(422)

    client = lifecycle.ClientDetails(
        name=form.name.data,
        email=form.email.data,
        phone=form.phone.data or None,
        notes=form.notes.data or None,
    )
    idempotent = lifecycle.IdempotentRequest(
        _stored_key(form),
        fingerprint,
        lambda booking, token: {"reference": booking.reference, "token": token},
    )
    for provider_id in candidates:  # "any": the first free provider; another if it was taken
        try:
            made, token = lifecycle.create_booking(
                app,
                tenant_id=tenant.id,
                service_id=service.id,
                provider_id=provider_id,
                start=start,
                client=client,
                now=now,
                consents=given,
                idempotent=idempotent,
            )
        except lifecycle.SlotUnavailable:
            continue
        except (idempotency.Replay, idempotency.KeyReused) as answered:
            return answer_again(answered)  # the same form, sent again while we checked
        except idempotency.ConcurrentClaim:
            # A double click: the other request booked first; its booking is ours.
            answered = _answered_before(tenant, idempotent.key, fingerprint, now, fresh=True)
            if answered is None:
                raise
            return answer_again(answered)
        except lifecycle.ConsentMissing as missing:
            context["consent_errors"] = {
                consent.id: gettext("Please tick this box to continue.")
                for consent in missing.missing
            }
            return again(422)
        except Refused as refused:
            status = refused.first.status if 400 <= refused.first.status < 600 else 403
            for item in refused.refusals:
                message = getattr(item.refusal, "message", None) or gettext(
                    "This booking was refused."
                )
                name = _field_of(getattr(item.refusal, "field", None), form)
                if name is not None:
                    context["field_errors"].setdefault(name, []).append(message)
                else:
                    field = getattr(item.refusal, "field", None)
                    context["errors"].append(f"{message} ({field})" if field else message)
            return again(status)
        except lifecycle.NotFound:
            abort(404)
        except LockTimeout:
            context["errors"].append(
                gettext("We are busy right now; nothing was booked. Please try again.")
            )
            response = again(503)
            response.headers["Retry-After"] = "2"
            return response
        return _to_confirmation(tenant, made.reference, token)
    return _back_to_slots(tenant, service, provider_arg, start)


def _manage_url(tenant: Tenant, booking: Booking, token: str, **extra: Any) -> str:
    return url_for(
        "booking_pages.manage",
        slug=tenant.slug,
        reference=booking.reference,
        token=token,
        **extra,
    )


def _to_confirmation(tenant: Tenant, reference: str, token: str) -> Response:
    """Post/Redirect/Get: the answer to the details form is a page a reload only shows again.
    Its address carries the manage token, as the manage link does: only who booked has it."""
    return redirect(
        url_for("booking_pages.booked", slug=tenant.slug, reference=reference, token=token), 303
    )


@booking_pages.get("/booked/<reference>")
def booked(slug: str, reference: str):
    tenant = _tenant(slug)
    token = request.args.get("token", "")[:200]
    booking = _owned_booking(tenant, reference, token)
    if booking.status != BookingStatus.CONFIRMED:
        return redirect(_manage_url(tenant, booking, token))  # cancelled since: say so there
    session = db.session()
    service = session.get(Service, booking.service_id)
    provider = session.get(Provider, booking.provider_id)
    response = _page(
        tenant,
        "book/confirmed.html",
        booking=booking,
        service=service,
        provider=provider,
        manage_url=_manage_url(tenant, booking, token),
        add_to_calendar=calendar_links(tenant, booking, service, provider, token),
        **_flow(
            tenant,
            DONE,
            service,
            provider,
            str(booking.provider_id),
            start=booking.starts_at,
            price_cents=booking.price_cents - booking.discount_cents,
        ),
    )
    response.headers["Cache-Control"] = "no-store"  # the address holds the manage token
    return response


# --- the manage page -----------------------------------------------------------------------------


def _token_check(token: str):
    def authorise(booking: Booking) -> None:
        if not lifecycle.token_matches(booking, token):
            # The same answer as an unknown reference: a wrong token reveals nothing.
            raise lifecycle.NotFound("No such booking.")

    return authorise


def _owned_booking(tenant: Tenant, reference: str, token: str) -> Booking:
    try:
        booking = lifecycle.find_booking(db.session(), tenant.id, reference[:64])
        _token_check(token)(booking)
    except lifecycle.NotFound:
        abort(404)
    return booking


def _reschedule_slots(
    tenant: Tenant, booking: Booking, service: Service, first: date, last: date
) -> list[Slot]:
    """The times the booking may move to: any provider of its service, not its own time."""
    found = offered_slots(
        db.session(),
        tenant,
        service=service,
        day_from=first,
        day_to=last,
        now=clock.now(),
        ignore_booking_id=booking.id,
    )
    return [slot for slot in _one_per_start(found) if slot.start != booking.starts_at]


def _reschedule_steps(
    tenant: Tenant,
    booking: Booking,
    service: Service,
    token: str,
    chosen_day: date | None,
    chosen_start: datetime | None,
) -> dict[str, Any]:
    """The booking flow's steps, for a new time: the month, then a day's times, then "move
    it there?". Only one day's times are ever shown at once."""
    today = _today(tenant)

    def step_url(**args: Any) -> str:
        return _manage_url(tenant, booking, token, step="reschedule", **args)

    def day_starts(day: date) -> list[datetime]:
        found = _reschedule_slots(tenant, booking, service, day, day)
        return [slot.start.astimezone(tenant.zone) for slot in found]

    urls = {
        "day_url": lambda day: step_url(date=day.isoformat()),
        "month_url": lambda month: step_url(month=month),
        "time_url": lambda start: step_url(start=start.isoformat()),
    }
    if chosen_start is not None:
        local = chosen_start.astimezone(tenant.zone)
        if local in day_starts(local.date()):
            return {
                "stage": "confirm",
                "start": local,
                "back_url": urls["day_url"](local.date()),
                **urls,
            }
        chosen_day = local.date()  # no longer free: that day's times instead
    if chosen_day is not None and today <= chosen_day <= today + timedelta(
        days=service.horizon_days
    ):
        return {
            "stage": "times",
            "day_label": _day_label(chosen_day),
            "starts": day_starts(chosen_day),
            "back_url": urls["month_url"](f"{chosen_day:%Y-%m}"),
            **urls,
        }
    around = booking.starts_at.astimezone(tenant.zone).date()
    month = steps.parse_month(request.args.get("month", ""), max(around, today))

    def free_days(first: date, last: date) -> set[date]:
        found = _reschedule_slots(tenant, booking, service, first, last)
        return {slot.start.astimezone(tenant.zone).date() for slot in found}

    view = steps.month_view(month, today, service.horizon_days, free_days)
    return {"stage": "month", "view": view, **urls}


def _manage_page(
    tenant: Tenant,
    booking: Booking,
    token: str,
    step: str | None,
    status: int = 200,
    error: str | None = None,
    form: FlaskForm | None = None,
    chosen_day: date | None = None,
    chosen_start: datetime | None = None,
) -> Response:
    session = db.session()
    service = session.get(Service, booking.service_id)
    changeable = booking.status == BookingStatus.CONFIRMED and booking.starts_at > clock.now()
    if not changeable or service is None:
        step = None
    closed = (
        lifecycle.closed_client_actions(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            tenant,
            booking,
            clock.now(),
        )
        if changeable
        else {}
    )
    if step in closed:
        step = None
    reschedule = None
    if step == "reschedule":
        if chosen_day is None and chosen_start is None:
            chosen_day = steps.parse_day(request.args.get("date", ""))
            chosen_start = _parse_start(request.args.get("start"))
        reschedule = _reschedule_steps(tenant, booking, service, token, chosen_day, chosen_start)
    provider = session.get(Provider, booking.provider_id)
    return _page(
        tenant,
        "book/manage.html",
        status,
        booking=booking,
        service=service,
        provider=provider,
        add_to_calendar=(
            calendar_links(tenant, booking, service, provider, token)
            if changeable and service is not None and provider is not None
            else None
        ),
        token=token,
        step=step,
        error=error,
        changeable=changeable,
        closed=closed,
        form=form or TokenForm(formdata=None),
        reschedule=reschedule,
        manage_url=_manage_url(tenant, booking, token),
        cancel_step_url=_manage_url(tenant, booking, token, step="cancel"),
        reschedule_step_url=_manage_url(tenant, booking, token, step="reschedule"),
        note=DONE_NOTES.get(request.args.get("done", "")),
    )


@booking_pages.get("/manage/<reference>")
def manage(slug: str, reference: str):
    tenant = _tenant(slug)
    token = request.args.get("token", "")[:200]
    booking = _owned_booking(tenant, reference, token)
    step = request.args.get("step")
    return _manage_page(tenant, booking, token, step if step in {"cancel", "reschedule"} else None)


def _refusal_text(refused: Refused) -> str:
    return " ".join(_messages(refused))


@booking_pages.post("/manage/<reference>/cancel")
@rate_limited("write")
def cancel(slug: str, reference: str):
    tenant = _tenant(slug)
    form = TokenForm()
    token = (request.form.get("token") or "")[:200]
    booking = _owned_booking(tenant, reference, token)
    if not form.validate_on_submit():
        return _manage_page(
            tenant, booking, token, "cancel", 422, gettext("Your form expired; please try again.")
        )
    try:
        lifecycle.cancel_booking(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            tenant_id=tenant.id,
            reference=booking.reference,
            authorise=_token_check(token),
            now=clock.now(),
            reason=None,  # a client gives none; the booking says who cancelled
            manage_token=token,
        )
    except Refused as refused:
        return _manage_page(
            tenant, booking, token, None, refused.first.status, _refusal_text(refused)
        )
    except lifecycle.NotChangeable as refusal:
        return _manage_page(tenant, booking, token, None, 409, refusal.message)
    except lifecycle.NotFound:
        abort(404)
    except LockTimeout:
        return _manage_page(
            tenant, booking, token, None, 503, gettext("We are busy; please try again.")
        )
    return redirect(_manage_url(tenant, booking, token, done="cancelled"))


@booking_pages.post("/manage/<reference>/reschedule")
@rate_limited("write")
def reschedule(slug: str, reference: str):
    tenant = _tenant(slug)
    form = RescheduleForm()
    token = (request.form.get("token") or "")[:200]
    booking = _owned_booking(tenant, reference, token)
    if not form.validate_on_submit():
        message = (
            gettext("Your form expired; please try again.")
            if "csrf_token" in form.errors
            else gettext("Please choose a new time.")
        )
        return _manage_page(tenant, booking, token, "reschedule", 422, message, form)
    start = _parse_start(form.start.data)
    tried = start.astimezone(tenant.zone).date() if start else None
    if start is None:
        return _manage_page(
            tenant, booking, token, "reschedule", 422, gettext("Please choose a new time.")
        )
    service = db.session().get(Service, booking.service_id)
    local_day = start.astimezone(tenant.zone).date()
    free = [
        slot.provider_id
        for slot in find_slots(
            db.session(),
            tenant_id=tenant.id,
            zone=tenant.zone,
            longest_block_minutes=tenant.longest_block_minutes,
            service=service,
            day_from=local_day,
            day_to=local_day,
            now=clock.now(),
            ignore_booking_id=booking.id,
        )
        if slot.start_epoch == start.timestamp()
    ]
    # Keep the same provider when free at the new time, else the first free one.
    candidates = sorted(free, key=lambda provider_id: provider_id != booking.provider_id)
    for provider_id in candidates:
        try:
            lifecycle.reschedule_booking(
                current_app._get_current_object(),  # type: ignore[attr-defined]
                tenant_id=tenant.id,
                reference=booking.reference,
                authorise=_token_check(token),
                start=start,
                provider_id=provider_id,
                now=clock.now(),
                manage_token=token,
            )
        except lifecycle.SlotUnavailable:
            continue
        except Refused as refused:
            return _manage_page(
                tenant,
                booking,
                token,
                "reschedule",
                refused.first.status,
                _refusal_text(refused),
                chosen_day=tried,
            )
        except lifecycle.NotChangeable as refusal:
            return _manage_page(tenant, booking, token, None, 409, refusal.message)
        except lifecycle.NotFound:
            abort(404)
        except LockTimeout:
            return _manage_page(
                tenant, booking, token, None, 503, gettext("We are busy; please try again.")
            )
        return redirect(_manage_url(tenant, booking, token, done="rescheduled"))
    return _manage_page(tenant, booking, token, "reschedule", 409, TAKEN_NOTE, chosen_day=tried)


# --- adding the booking to a calendar ---------------------------------------------------------

GOOGLE_CALENDAR = "https://calendar.google.com/calendar/render"
OUTLOOK_CALENDAR = "https://outlook.live.com/calendar/0/deeplink/compose"
SAFE_FILE_NAME = re.compile(r"[^A-Za-z0-9_-]")


def _event_title(tenant: Tenant, service: Service) -> str:
    # As the e-mailed invitation names it, so the two read the same in a calendar.
    return f"{service.name} – {tenant.name}"


def _event_text(booking: Booking, provider: Provider) -> str:
    # Never the manage link: these addresses go to Google and Microsoft.
    return gettext(
        "Booking %(reference)s with %(provider)s.",
        reference=booking.reference,
        provider=provider.name,
    )


def calendar_links(
    tenant: Tenant, booking: Booking, service: Service, provider: Provider, token: str
) -> dict[str, str]:
    """Google's and Outlook's "new event" addresses (in UTC, which both read without a zone),
    and the booking's own ``.ics`` file for Apple's calendar (and any other)."""
    starts, ends = booking.starts_at.astimezone(UTC), booking.ends_at.astimezone(UTC)
    title = _event_title(tenant, service)
    where = tenant.address or tenant.name
    text = _event_text(booking, provider)
    google = {
        "action": "TEMPLATE",
        "text": title,
        "dates": f"{starts:%Y%m%dT%H%M%SZ}/{ends:%Y%m%dT%H%M%SZ}",
        "details": text,
        "location": where,
    }
    outlook = {
        "path": "/calendar/action/compose",
        "rru": "addevent",
        "subject": title,
        "startdt": _utc_iso(starts),
        "enddt": _utc_iso(ends),
        "body": text,
        "location": where,
    }
    return {
        "google": f"{GOOGLE_CALENDAR}?{urlencode(google)}",
        "outlook": f"{OUTLOOK_CALENDAR}?{urlencode(outlook)}",
        "apple": url_for(
            "booking_pages.calendar_file",
            slug=tenant.slug,
            reference=booking.reference,
            token=token,
        ),
    }


@booking_pages.get("/manage/<reference>/booking.ics")
def calendar_file(slug: str, reference: str):
    """The booking as an iCalendar file, behind the manage token as the manage page is.
    PUBLISH, not the e-mail's REQUEST: a file opened by hand is an event to keep, not an
    invitation to answer. The same UID, so a calendar holding the e-mailed one updates it."""
    tenant = _tenant(slug)
    token = request.args.get("token", "")[:200]
    booking = _owned_booking(tenant, reference, token)
    session = db.session()
    service = session.get(Service, booking.service_id)
    provider = session.get(Provider, booking.provider_id)
    if service is None or provider is None:
        abort(404)
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Bookwell//Bookings//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = icalendar.Event()
    event.add("uid", f"{booking.reference}@bookwell")
    event.add("dtstamp", clock.now().astimezone(UTC))
    event.add("dtstart", booking.starts_at.astimezone(UTC))
    event.add("dtend", booking.ends_at.astimezone(UTC))
    event.add("summary", _event_title(tenant, service))
    event.add("description", _event_text(booking, provider))
    if tenant.address:
        event.add("location", tenant.address)
    event.add("sequence", booking.reschedule_count)
    cancelled = booking.status == BookingStatus.CANCELLED
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    calendar.add_component(event)
    response = make_response(calendar.to_ical())
    response.mimetype = "text/calendar"
    file_name = SAFE_FILE_NAME.sub("", booking.reference) or "booking"
    response.headers["Content-Disposition"] = f'attachment; filename="{file_name}.ics"'
    response.headers["Cache-Control"] = "no-store"  # the address holds the manage token
    return response
