"""Who may call what: every API route and method, for every role and for another tenant's user,
generated from the app's URL map, so a new route cannot be forgotten; then the staff API's
answers, tenant walls, and platform support passing ``before_data_access`` and the audit trail.

EXPECTATIONS below is the contract: a route missing from it fails the suite until someone says
who may call it. Staff routes take their roles from ``core/access/permissions.py`` (the one place).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from typing import Any

import pytest
from conftest import booking_body
from sqlalchemy import select

from bookwell.core.access import sessions, users
from bookwell.core.access.permissions import allowed
from bookwell.core.booking.tenants import add_provider, add_service, create_tenant
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.storage import db
from bookwell.core.storage.models import AuditEntry, Booking, Role, Tenant, User
from bookwell.hooks import Consent, Manifest, Refusal, hookimpl

PASSWORD = "correct horse battery staple"
SALON = "/api/v1/tenants/salon"
TENANT_ROLES = ("owner", "manager", "staff", "receptionist", "client")
ANONYMOUS, SUPPORT, OTHER_TENANT = "anonymous", "support", "owner-of-another-tenant"
# A staff account working as the salon's first provider, whose every booking the matrix reads
# and changes ("staff" works as no provider: it reads no booking at all).
LINKED_STAFF = "staff-with-provider"
CALLERS = (ANONYMOUS, *TENANT_ROLES, LINKED_STAFF, SUPPORT, OTHER_TENANT)

# Outcome classes. ALLOWED: the request got past authentication and authorisation (a 2xx, or a
# 4xx other than 401/403/404 about the request itself).
ALLOWED, UNAUTHENTICATED, FORBIDDEN, HIDDEN = "allowed", "401", "403", "404"


def manifest(name: str) -> Manifest:
    return Manifest(name, name.title(), f"Test plugin {name}.", "1.0", "test", "tests")


# --- the contract -------------------------------------------------------------------------------


def role_of(caller: str) -> Role | None:
    return {ANONYMOUS: None, OTHER_TENANT: Role.OWNER, LINKED_STAFF: Role.STAFF}.get(
        caller
    ) or Role(caller)


def holds(caller: str, permission: str | tuple[str, ...]) -> bool:
    """Whether the caller's role holds the permission (one of them, for several)."""
    names = (permission,) if isinstance(permission, str) else permission
    return any(allowed(role_of(caller), name) for name in names)


@dataclass(frozen=True)
class Public:
    """Everyone, anonymous included, of any tenant or none."""

    def expected(self, caller: str) -> str:
        return ALLOWED


@dataclass(frozen=True)
class LoggedIn:
    """Any logged-in user, about their own account (of any tenant, or support)."""

    def expected(self, caller: str) -> str:
        return UNAUTHENTICATED if caller == ANONYMOUS else ALLOWED


@dataclass(frozen=True)
class Staff:
    """A bearer of this tenant whose role holds ``permission`` (support: after its guards).
    Another tenant's user gets 404; ``anonymous`` says what a request without a bearer gets."""

    permission: str | tuple[str, ...]
    anonymous: str = UNAUTHENTICATED
    also: tuple[str, ...] = ()  # permissions needed as well (an export: ``data.export``)

    def expected(self, caller: str) -> str:
        if caller == ANONYMOUS:
            return self.anonymous
        if caller == OTHER_TENANT:
            return HIDDEN
        needed_too = all(allowed(role_of(caller), p) for p in self.also)
        return ALLOWED if holds(caller, self.permission) and needed_too else FORBIDDEN


@dataclass(frozen=True)
class OneBooking(Staff):
    """One booking of the salon's first provider: as :class:`Staff`, and the caller must read
    it: every booking (``bookings.read``), or their own provider's (``bookings.read_own``,
    for the account linked to that provider)."""

    def expected(self, caller: str) -> str:
        found = super().expected(caller)
        if found != ALLOWED or caller == ANONYMOUS:
            return found
        reads = holds(caller, "bookings.read") or (
            caller == LINKED_STAFF and holds(caller, "bookings.read_own")
        )
        return ALLOWED if reads else FORBIDDEN


@dataclass(frozen=True)
class MakeBooking:
    """Booking is open to everyone; a bearer of the business's staff books as staff, in the
    agenda they read entirely: every provider's, or the one their account works as."""

    def expected(self, caller: str) -> str:
        if caller in (ANONYMOUS, OTHER_TENANT, SUPPORT, "client"):
            return ALLOWED
        in_own_agenda = holds(caller, "bookings.read") or caller == LINKED_STAFF
        return ALLOWED if holds(caller, "bookings.manage") and in_own_agenda else FORBIDDEN


def staff_or_manage_token(permission: str | tuple[str, ...]) -> Staff:
    """GET, cancel and reschedule of one booking: with a Bearer header it is the staff's request
    (by ``permission``, on a booking the caller reads); without one, the client's, allowed by
    the booking's manage token."""
    return OneBooking(permission, anonymous=ALLOWED)


EXPECTATIONS: dict[tuple[str, str], Public | LoggedIn | Staff | MakeBooking] = {
    ("GET", "/api/v1/openapi.json"): Public(),
    ("GET", "/api/v1/tenants/<slug>/services"): Public(),
    ("GET", "/api/v1/tenants/<slug>/providers"): Public(),
    ("GET", "/api/v1/tenants/<slug>/availability"): Public(),
    ("GET", "/api/v1/tenants/<slug>/booking-requirements"): Public(),
    ("GET", "/api/v1/tenants/<slug>/password-rules"): Public(),
    ("POST", "/api/v1/tenants/<slug>/bookings"): MakeBooking(),
    # Filtered: each reads the bookings they may (tested below).
    ("GET", "/api/v1/tenants/<slug>/bookings"): Staff(("bookings.read", "bookings.read_own")),
    ("GET", "/api/v1/tenants/<slug>/bookings/<reference>"): staff_or_manage_token(
        ("bookings.read", "bookings.read_own")
    ),
    ("POST", "/api/v1/tenants/<slug>/bookings/<reference>/cancel"): staff_or_manage_token(
        "bookings.manage"
    ),
    ("POST", "/api/v1/tenants/<slug>/bookings/<reference>/reschedule"): staff_or_manage_token(
        "bookings.manage"
    ),
    ("POST", "/api/v1/tenants/<slug>/auth/login"): Public(),
    ("POST", "/api/v1/tenants/<slug>/clients"): Public(),
    ("POST", "/api/v1/auth/logout"): LoggedIn(),
    ("GET", "/api/v1/auth/sessions"): LoggedIn(),
    ("POST", "/api/v1/auth/sessions/<int:session_id>/revoke"): LoggedIn(),
    ("POST", "/api/v1/auth/password"): LoggedIn(),
    ("GET", "/api/v1/tenants/<slug>/plugins"): Staff("plugins.read"),
    ("PUT", "/api/v1/tenants/<slug>/plugins/<name>"): Staff("plugins.manage"),
    ("GET", "/api/v1/tenants/<slug>/audit"): Staff("audit.read", also=("data.export",)),
}


# --- the world every caller acts in -------------------------------------------------------------


@dataclass
class Caller:
    name: str
    token: str | None = None  # the bearer this caller sends (an API key for support)
    user_id: int | None = None
    spare: list[tuple[int, str]] = field(default_factory=list)  # own extra sessions: (id, token)


@dataclass
class Call:
    """One request of the matrix: URL values (path and query), a JSON body, the bearer to send
    (the caller's own unless said), and the status an allowed caller gets."""

    values: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    token: str | None = None
    ok: int = 200


@dataclass
class World:
    app: Any
    client: Any
    business: Any
    clock: Any
    callers: dict[str, Caller]
    spa: tuple[int, int, int]  # tenant, service and provider ids of 'spa'
    slots_taken: int = 0
    booking: tuple[str, str] = ("", "")  # a confirmed booking of 'salon': reference, token

    def next_slot(self) -> str:
        """A free half hour of the first provider: 09:00-17:00 Paris from Tuesday 2 March."""
        day = date(2027, 3, 2) + timedelta(days=self.slots_taken // 16)
        minutes = 9 * 60 + 30 * (self.slots_taken % 16)
        self.slots_taken += 1
        return f"{day.isoformat()}T{minutes // 60:02}:{minutes % 60:02}:00+01:00"

    def fresh_booking(self) -> tuple[str, str]:
        response = self.client.post(
            f"{SALON}/bookings", json=booking_body(self.business, self.next_slot())
        )
        assert response.status_code == 201, response.json
        return response.json["reference"], response.json["manage_token"]


def add_user(app, clock, email, role, tenant_id, provider_id=None) -> int:
    with app.app_context():
        return users.create_user(
            app,
            tenant_id=tenant_id,
            email=email,
            role=role,
            password=PASSWORD,
            now=clock(),
            provider_id=provider_id,
        ).id


def spare_session(app, clock, user_id) -> tuple[int, str]:
    with db.write_transaction(app) as writer:
        row, secret = sessions.start(
            writer,
            writer.get(User, user_id),
            kind="api",
            limits=sessions.Limits(30, 12 * 60),
            now=clock(),
            ip=None,
            user_agent=None,
        )
        return row.id, secret


def add_spa(app, clock) -> tuple[int, int, int]:
    """A second business, 'spa', open every day: its id, its service's and its provider's."""
    with db.write_transaction(app) as session:
        spa = create_tenant(session, "spa", name="Spa", timezone="Europe/Paris", now=clock())
        massage = add_service(
            session, spa, "Massage", duration_minutes=60, slot_step_minutes=60, min_notice_minutes=0
        )
        hours = {weekday: [(time(9), time(17))] for weekday in range(7)}
        cleo = add_provider(session, spa, "Cleo", [massage], hours)
        return spa.id, massage.id, cleo.id


@pytest.fixture
def world(app, business, clock) -> World:
    client = app.test_client()
    spa = add_spa(app, clock)
    with db.write_transaction(app) as session:
        # Clients log in, and sign up, only where the business has client accounts on.
        session.get(Tenant, business.tenant_id).client_accounts = True
    callers = {ANONYMOUS: Caller(ANONYMOUS)}
    for name in (*TENANT_ROLES, LINKED_STAFF):
        role = role_of(name)
        provider = business.provider_id if name == LINKED_STAFF else None
        email = f"{name}@example.com"
        user_id = add_user(app, clock, email, role, business.tenant_id, provider)
        login = client.post(f"{SALON}/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.json
        callers[name] = Caller(name, login.json["token"], user_id)
    support_id = add_user(app, clock, "help@bookwell.example", "support", None)
    with app.app_context(), db.write_transaction(app) as writer:
        _, key = sessions.create_api_key(writer, writer.get(User, support_id), clock())
    callers[SUPPORT] = Caller(SUPPORT, key, support_id)
    other_id = add_user(app, clock, "owner@spa.example", "owner", spa[0])
    login = client.post(
        "/api/v1/tenants/spa/auth/login", json={"email": "owner@spa.example", "password": PASSWORD}
    )
    assert login.status_code == 200, login.json
    callers[OTHER_TENANT] = Caller(OTHER_TENANT, login.json["token"], other_id)
    for caller in callers.values():
        if caller.user_id is not None:
            caller.spare = [spare_session(app, clock, caller.user_id) for _ in range(2)]
    made = World(app, client, business, clock, callers, spa)
    made.booking = made.fresh_booking()
    return made


# --- how each route is called -------------------------------------------------------------------


def _show_booking(world: World, who: Caller) -> Call:
    reference, token = world.booking
    if who.name == ANONYMOUS:
        return Call({"reference": reference, "token": token})
    return Call({"reference": reference})


def _cancel_booking(world: World, who: Caller) -> Call:
    reference, token = world.fresh_booking()
    if who.name == ANONYMOUS:
        return Call({"reference": reference}, {"token": token})
    return Call({"reference": reference}, {"reason": "The salon is closed that day."})


def _reschedule_booking(world: World, who: Caller) -> Call:
    reference, token = world.fresh_booking()
    if who.name == ANONYMOUS:
        return Call({"reference": reference}, {"token": token, "start": world.next_slot()})
    return Call({"reference": reference}, {"start": world.next_slot()})


def _log_out(world: World, who: Caller) -> Call:
    # A spare session of the caller's own, so the caller's bearer lives on for the other routes.
    return Call(token=who.spare[0][1] if who.spare else None)


def _end_session(world: World, who: Caller) -> Call:
    # The caller's own spare session; anonymous names the owner's, which must stay alive.
    owner = world.callers["owner"]
    return Call({"session_id": (who.spare or owner.spare)[1][0]})


REQUESTS: dict[tuple[str, str], Callable[[World, Caller], Call]] = {
    ("GET", "/api/v1/openapi.json"): lambda w, who: Call(),
    ("GET", "/api/v1/tenants/<slug>/audit"): lambda w, who: Call({"format": "csv"}),
    ("GET", "/api/v1/tenants/<slug>/services"): lambda w, who: Call(),
    ("GET", "/api/v1/tenants/<slug>/providers"): lambda w, who: Call(
        {"service_id": w.business.service_id}
    ),
    ("GET", "/api/v1/tenants/<slug>/availability"): lambda w, who: Call(
        {"service_id": w.business.service_id, "from": "2027-03-02", "to": "2027-03-03"}
    ),
    ("GET", "/api/v1/tenants/<slug>/booking-requirements"): lambda w, who: Call(),
    ("GET", "/api/v1/tenants/<slug>/password-rules"): lambda w, who: Call(),
    ("POST", "/api/v1/tenants/<slug>/bookings"): lambda w, who: Call(
        json=booking_body(w.business, w.next_slot()), ok=201
    ),
    ("GET", "/api/v1/tenants/<slug>/bookings"): lambda w, who: Call(
        {"from": "2027-03-01", "to": "2027-03-31"}
    ),
    ("GET", "/api/v1/tenants/<slug>/bookings/<reference>"): _show_booking,
    ("POST", "/api/v1/tenants/<slug>/bookings/<reference>/cancel"): _cancel_booking,
    ("POST", "/api/v1/tenants/<slug>/bookings/<reference>/reschedule"): _reschedule_booking,
    ("POST", "/api/v1/tenants/<slug>/auth/login"): lambda w, who: Call(
        json={"email": "owner@example.com", "password": PASSWORD}
    ),
    ("POST", "/api/v1/tenants/<slug>/clients"): lambda w, who: Call(
        json={"name": "New", "email": f"new-{who.name}@example.com", "password": PASSWORD},
        ok=201,
    ),
    ("POST", "/api/v1/auth/logout"): _log_out,
    ("GET", "/api/v1/auth/sessions"): lambda w, who: Call(),
    ("POST", "/api/v1/auth/sessions/<int:session_id>/revoke"): _end_session,
    # A deliberately empty body: 422 shows the request got past authentication.
    ("POST", "/api/v1/auth/password"): lambda w, who: Call(json={}, ok=422),
    ("GET", "/api/v1/tenants/<slug>/plugins"): lambda w, who: Call(),
    ("PUT", "/api/v1/tenants/<slug>/plugins/<name>"): lambda w, who: Call(
        {"name": "closed_days"}, {"enabled": True}
    ),
}


def api_routes(app) -> list[tuple[str, Any]]:
    """(method, rule) of every API route in the URL map, HEAD and OPTIONS aside."""
    return sorted(
        (
            (method, rule)
            for rule in app.url_map.iter_rules()
            # Core's routes: an installed plugin's own (plugin_<name>.*) answer to its code.
            if rule.rule.startswith("/api/") and not rule.endpoint.startswith("plugin_")
            for method in rule.methods - {"HEAD", "OPTIONS"}
        ),
        key=lambda pair: (pair[1].rule, pair[0]),
    )


def outcome_of(status: int) -> str:
    if status in (401, 403, 404):
        return str(status)
    if status < 500:
        return ALLOWED
    return f"server error {status}"


# --- the matrix ---------------------------------------------------------------------------------


def test_every_api_route_and_method_is_in_the_table(app):
    in_the_map = {(method, rule.rule) for method, rule in api_routes(app)}
    assert in_the_map, "no API route found in the URL map"
    forgotten = sorted(in_the_map - set(EXPECTATIONS))
    assert not forgotten, f"routes nobody said who may call; add them to EXPECTATIONS: {forgotten}"
    stale = sorted(set(EXPECTATIONS) - in_the_map)
    assert not stale, f"EXPECTATIONS names routes that no longer exist: {stale}"
    assert set(REQUESTS) == set(EXPECTATIONS), "every route in EXPECTATIONS needs a REQUESTS entry"


@pytest.mark.parametrize("caller", CALLERS)
def test_every_api_route_answers_each_caller_as_the_table_says(world, caller):
    who = world.callers[caller]
    urls = world.app.url_map.bind("localhost")
    problems, forgotten = [], []
    for method, rule in api_routes(world.app):
        key = (method, rule.rule)
        if key not in EXPECTATIONS:
            forgotten.append(key)
            continue
        call = REQUESTS[key](world, who)
        token = call.token if call.token is not None else who.token
        values = {"slug": "salon"} if "slug" in rule.arguments else {}
        path = urls.build(rule.endpoint, {**values, **call.values}, method=method)
        assert urls.match(path.partition("?")[0], method=method, return_rule=True)[0] is rule
        response = world.client.open(
            path,
            method=method,
            json=call.json,
            headers={"Authorization": f"Bearer {token}"} if token else {},
        )
        expected = EXPECTATIONS[key].expected(caller)
        got = outcome_of(response.status_code)
        if got != expected:
            problems.append(
                f"{method} {path} as {caller}: expected {expected}, got {response.status_code} "
                f"{response.get_data(as_text=True)[:200]}"
            )
        elif got == ALLOWED and response.status_code != call.ok:
            problems.append(
                f"{method} {path} as {caller}: allowed, but {response.status_code} instead of "
                f"{call.ok}: {response.get_data(as_text=True)[:200]}"
            )
    assert not forgotten, f"routes missing from EXPECTATIONS: {forgotten}"
    assert not problems, "\n".join(problems)


def test_the_matrix_logs_out_and_ends_spare_sessions_only(world):
    # The matrix's logout and session-revoke act on spare sessions only: prove it, so that a
    # later route's 401 can only mean what the table says.
    for caller in CALLERS:
        who = world.callers[caller]
        for key in (
            ("POST", "/api/v1/auth/logout"),
            ("POST", "/api/v1/auth/sessions/<int:session_id>/revoke"),
        ):
            call = REQUESTS[key](world, who)
            if caller == ANONYMOUS:
                assert call.token is None
            else:
                assert call.token != who.token
                assert call.values.get("session_id") in (None, *(sid for sid, _ in who.spare))


def test_the_issues_promises_hold_in_the_permission_table():
    def holders(permission: str) -> set[Role]:
        return {role for role in Role if allowed(role, permission)}

    everyone = {Role.OWNER, Role.MANAGER, Role.STAFF, Role.RECEPTIONIST}
    # Staff read only their own provider's bookings; receptionists everyone's.
    assert holders("bookings.read") == {Role.OWNER, Role.MANAGER, Role.RECEPTIONIST, Role.SUPPORT}
    assert holders("bookings.read_own") == everyone
    assert holders("bookings.manage") == everyone
    assert holders("plugins.read") == everyone
    # No catalogue and no exports for receptionists (nor staff); managers all but the owner's.
    for permission in ("catalogue.manage", "staff.manage", "data.export", "audit.read"):
        assert holders(permission) == {Role.OWNER, Role.MANAGER}, permission
    for permission in ("plugins.manage", "business.manage"):
        assert holders(permission) == {Role.OWNER}, permission
    assert not allowed(Role.CLIENT, "bookings.read")
    assert not allowed("nobody", "bookings.read")
    assert not allowed(Role.OWNER, "no.such.permission")


# --- the staff API ------------------------------------------------------------------------------


class Terms:
    MANIFEST = manifest("terms")

    @hookimpl
    def booking_requirements(ctx):
        return [Consent("terms", "I accept the terms", "The terms, version 3.", "3", "/terms")]


class SupportLock:
    """Keeps platform support out of the tenant's data; records every scope it is asked about."""

    MANIFEST = manifest("support-lock")
    asked: list = []

    @hookimpl
    def before_data_access(ctx, scope):
        SupportLock.asked.append((ctx.actor.role, scope))
        if ctx.actor.role == "support":
            return Refusal("Support access is closed here.", code="support_locked", status=403)


class SupportCrash:
    MANIFEST = manifest("support-crash")

    @hookimpl
    def before_data_access(ctx, scope):
        raise RuntimeError("bug in a guard")


@pytest.fixture
def app(make_app):
    SupportLock.asked.clear()
    return make_app(EXTRA_PLUGINS=[Terms, SupportLock, SupportCrash])


def enable(world: World, name: str) -> None:
    with world.app.app_context():
        plugin_changes.enable(world.app, world.business.tenant_id, name, {}, world.clock())


def bearer(world: World, caller: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.callers[caller].token}"}


def audit_actions(world: World) -> list[tuple[str, str, str]]:
    with db.engine_of(world.app).connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                select(AuditEntry.action, AuditEntry.actor, AuditEntry.subject)
                .where(AuditEntry.tenant_id == world.business.tenant_id)
                .order_by(AuditEntry.sequence)
            )
        ]


def test_staff_list_bookings_with_their_details_and_consents(world):
    enable(world, "terms")
    response = world.client.post(
        f"{SALON}/bookings",
        json=booking_body(world.business, "2027-03-04T11:00:00+01:00", consents=["terms"]),
    )
    assert response.status_code == 201, response.json
    reference = response.json["reference"]

    unlinked = world.client.get(
        f"{SALON}/bookings?from=2027-03-04&to=2027-03-04", headers=bearer(world, "staff")
    )
    assert unlinked.status_code == 200 and unlinked.json == []  # works as no provider
    listed = world.client.get(
        f"{SALON}/bookings?from=2027-03-04&to=2027-03-04", headers=bearer(world, LINKED_STAFF)
    )
    assert listed.status_code == 200
    assert [item["reference"] for item in listed.json] == [reference]
    item = listed.json[0]
    assert {"reference", "status", "start", "end", "service_id", "provider_id", "client"} <= set(
        item
    )
    assert item["status"] == "confirmed"
    assert item["start"] == "2027-03-04T11:00:00+01:00"
    assert item["end"] == "2027-03-04T11:30:00+01:00"
    assert (item["service_id"], item["provider_id"]) == (
        world.business.service_id,
        world.business.provider_id,
    )
    assert item["client"]["name"] == "Ann" and item["client"]["email"] == "ann@example.com"
    assert len(item["consents"]) == 1
    consent = item["consents"][0]
    assert (consent["id"], consent["version"]) == ("terms", "3")
    assert len(consent["text_sha256"]) == 64 and consent["given_at"]
    assert "manage_token" not in item


def test_the_staff_list_holds_only_this_tenants_bookings_between_the_dates(world):
    inside = world.booking[0]  # 2 March
    later = world.client.post(
        f"{SALON}/bookings", json=booking_body(world.business, "2027-03-20T10:00:00+01:00")
    ).json["reference"]
    spa = world.client.post(
        "/api/v1/tenants/spa/bookings",
        json={
            "service_id": world.spa[1],
            "provider_id": world.spa[2],
            "start": "2027-03-02T10:00:00+01:00",
            "client": {"name": "Zoe", "email": "zoe@example.com"},
        },
    )
    assert spa.status_code == 201, spa.json
    listed = world.client.get(
        f"{SALON}/bookings?from=2027-03-01&to=2027-03-07", headers=bearer(world, "owner")
    )
    references = [item["reference"] for item in listed.json]
    assert references == [inside]
    assert later not in references and spa.json["reference"] not in references
    spa_list = world.client.get(
        "/api/v1/tenants/spa/bookings?from=2027-03-01&to=2027-03-07",
        headers=bearer(world, OTHER_TENANT),
    )
    assert [item["reference"] for item in spa_list.json] == [spa.json["reference"]]


@pytest.mark.parametrize(
    "query", ["", "?from=2027-03-01", "?to=2027-03-01", "?from=yesterday&to=2027-03-01"]
)
def test_the_staff_list_needs_a_from_and_a_to_date(world, query):
    response = world.client.get(f"{SALON}/bookings{query}", headers=bearer(world, "owner"))
    assert response.status_code == 422


def test_staff_read_one_booking_by_reference(world):
    reference, _ = world.booking
    response = world.client.get(
        f"{SALON}/bookings/{reference}", headers=bearer(world, LINKED_STAFF)
    )
    assert response.status_code == 200
    assert response.json["reference"] == reference
    assert response.json["consents"] == []
    assert "manage_token" not in response.json
    missing = world.client.get(f"{SALON}/bookings/BW-NOPE", headers=bearer(world, LINKED_STAFF))
    assert missing.status_code == 404
    unlinked = world.client.get(f"{SALON}/bookings/{reference}", headers=bearer(world, "staff"))
    assert unlinked.status_code == 403


def test_staff_cancel_a_booking_with_a_reason(world):
    reference, _ = world.booking
    response = world.client.post(
        f"{SALON}/bookings/{reference}/cancel",
        json={"reason": "The salon is closed that day."},
        headers=bearer(world, "receptionist"),
    )
    assert response.status_code == 200, response.json
    assert response.json["status"] == "cancelled"
    assert response.json["cancellation_reason"] == "The salon is closed that day."
    receptionist = world.callers["receptionist"].user_id
    assert ("booking.cancelled", f"user:{receptionist}", f"booking:{reference}") in audit_actions(
        world
    )
    again = world.client.post(
        f"{SALON}/bookings/{reference}/cancel", json={}, headers=bearer(world, "owner")
    )
    assert again.status_code == 409


def test_staff_reschedule_a_booking_keeping_its_reference(world):
    reference, token = world.booking
    response = world.client.post(
        f"{SALON}/bookings/{reference}/reschedule",
        json={"start": "2027-03-05T15:00:00+01:00", "provider_id": world.business.provider_id},
        headers=bearer(world, "manager"),
    )
    assert response.status_code == 200, response.json
    assert response.json["reference"] == reference
    assert response.json["start"] == "2027-03-05T15:00:00+01:00"
    assert response.json["rescheduled_from"][0]["start"] == "2027-03-02T09:00:00+01:00"
    assert "manage_token" not in response.json
    # The client's manage token still finds the booking at its new time.
    shown = world.client.get(f"{SALON}/bookings/{reference}?token={token}")
    assert shown.json["start"] == "2027-03-05T15:00:00+01:00"


def test_a_bearer_makes_a_booking_request_the_staffs_even_with_the_manage_token(world):
    reference, token = world.booking
    as_client = world.client.get(
        f"{SALON}/bookings/{reference}?token={token}", headers=bearer(world, "client")
    )
    assert as_client.status_code == 403
    cancel = world.client.post(
        f"{SALON}/bookings/{reference}/cancel",
        json={"token": token},
        headers=bearer(world, "client"),
    )
    assert cancel.status_code == 403
    moved = world.client.post(
        f"{SALON}/bookings/{reference}/reschedule",
        json={"token": token, "start": "2027-03-05T15:00:00+01:00"},
        headers=bearer(world, "client"),
    )
    assert moved.status_code == 403
    with db.engine_of(world.app).connect() as connection:
        row = connection.execute(
            select(Booking.status, Booking.starts_at).where(Booking.reference == reference)
        ).one()
    assert row.status == "confirmed"
    assert not row.starts_at.isoformat().startswith("2027-03-05")


def test_another_tenants_token_cannot_even_confirm_a_booking_exists(world):
    reference, _ = world.booking
    other = bearer(world, OTHER_TENANT)
    real = world.client.get(f"{SALON}/bookings/{reference}", headers=other)
    made_up = world.client.get(f"{SALON}/bookings/BW-NOPE", headers=other)
    assert real.status_code == made_up.status_code == 404
    assert real.get_data() == made_up.get_data()
    cancel = world.client.post(
        f"{SALON}/bookings/{reference}/cancel", json={"reason": "x"}, headers=other
    )
    assert cancel.status_code == 404
    listed = world.client.get(f"{SALON}/bookings?from=2027-03-01&to=2027-03-07", headers=other)
    assert listed.status_code == 404
    with db.engine_of(world.app).connect() as connection:
        status = connection.scalar(select(Booking.status).where(Booking.reference == reference))
    assert status == "confirmed"


def test_a_token_for_an_unknown_tenant_is_a_404(world):
    response = world.client.get(
        "/api/v1/tenants/nowhere/bookings?from=2027-03-01&to=2027-03-07",
        headers=bearer(world, "owner"),
    )
    assert response.status_code == 404


# --- platform support ---------------------------------------------------------------------------


def test_every_support_access_is_audited_in_the_tenants_trail(world):
    reference, _ = world.booking
    support = world.callers[SUPPORT].user_id
    headers = bearer(world, SUPPORT)
    listed = world.client.get(f"{SALON}/bookings?from=2027-03-01&to=2027-03-07", headers=headers)
    shown = world.client.get(f"{SALON}/bookings/{reference}", headers=headers)
    assert listed.status_code == shown.status_code == 200
    accesses = [entry for entry in audit_actions(world) if entry[0] == "support.access"]
    assert accesses == [
        ("support.access", f"user:{support}", "scope:bookings"),
        ("support.access", f"user:{support}", "scope:booking"),
    ]
    # Staff reading their own business leave no support trail.
    world.client.get(f"{SALON}/bookings/{reference}", headers=bearer(world, "owner"))
    assert len([entry for entry in audit_actions(world) if entry[0] == "support.access"]) == 2


def test_support_reads_but_never_manages(world):
    reference, _ = world.booking
    response = world.client.post(
        f"{SALON}/bookings/{reference}/cancel",
        json={"reason": "support says"},
        headers=bearer(world, SUPPORT),
    )
    assert response.status_code == 403
    with db.engine_of(world.app).connect() as connection:
        status = connection.scalar(select(Booking.status).where(Booking.reference == reference))
    assert status == "confirmed"


def test_a_before_data_access_refusal_keeps_support_out_and_is_audited(world):
    enable(world, "support-lock")
    reference, _ = world.booking
    headers = bearer(world, SUPPORT)
    response = world.client.get(f"{SALON}/bookings/{reference}", headers=headers)
    assert response.status_code == 403
    error = response.json["error"]
    assert error["code"] == "support_locked"
    assert error["message"] == "Support access is closed here."
    assert error["refusals"][0]["plugin"] == "support-lock"
    assert "client" not in response.json and "reference" not in response.json
    listed = world.client.get(f"{SALON}/bookings?from=2027-03-01&to=2027-03-07", headers=headers)
    assert listed.status_code == 403
    assert SupportLock.asked == [("support", "booking"), ("support", "bookings")]

    support = world.callers[SUPPORT].user_id
    trail = [entry for entry in audit_actions(world) if entry[0].startswith("support.")]
    assert trail == [
        ("support.access_refused", f"user:{support}", "scope:booking"),
        ("support.access_refused", f"user:{support}", "scope:bookings"),
    ]
    # The tenant's own staff are not support: the lock leaves them their bookings.
    assert (
        world.client.get(
            f"{SALON}/bookings/{reference}", headers=bearer(world, "owner")
        ).status_code
        == 200
    )


def test_a_crashing_before_data_access_guard_fails_closed_for_support_and_is_audited(world):
    enable(world, "support-crash")
    reference, _ = world.booking
    response = world.client.get(f"{SALON}/bookings/{reference}", headers=bearer(world, SUPPORT))
    assert response.status_code == 503
    assert response.json["error"]["code"] == "plugin_failed"
    actions = [entry[0] for entry in audit_actions(world)]
    assert "support.access_refused" in actions and "support.access" not in actions


def test_support_access_to_each_tenant_is_audited_in_that_tenants_trail(world):
    headers = bearer(world, SUPPORT)
    world.client.get("/api/v1/tenants/spa/bookings?from=2027-03-01&to=2027-03-07", headers=headers)
    with db.engine_of(world.app).connect() as connection:
        rows = connection.execute(
            select(AuditEntry.tenant_id, AuditEntry.action).where(
                AuditEntry.action == "support.access"
            )
        ).all()
    assert len(rows) == 1
    assert rows[0].tenant_id not in (None, world.business.tenant_id)
