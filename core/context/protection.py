"""Core's side of ``data_protection``: what the tenant's plugins ask core to do with client data.

Each enabled plugin may answer ``data_protection`` with a :class:`~bookwell.hooks.DataProtection`;
core takes the union (:func:`protection_for`). A plugin that is enabled but broken, or whose
``data_protection`` raises or overruns, counts as asking for everything: the question is about
protecting data, so not knowing the answer must never mean less protection, and both measures
keep the service running (an audited view is still shown; an encrypted field still reads).

``audit_views``: :func:`audit_view` writes ``booking.viewed`` or ``client.viewed`` in a
transaction of its own, committed before the page or API answer is rendered; when it cannot be
written, :class:`ViewNotAudited` refuses the view (503), which is never shown unaudited.

``encrypt_client_fields``: a booking's ``client_phone`` and ``client_notes`` are stored as
``ENCRYPTED_PREFIX`` + a token of the tenant's ``ctx.secrets`` (AES-GCM under the tenant's own
data key, the tenant's id authenticated with it). One choke point each way, on the ORM:

* reading: every ``Booking`` loaded (or refreshed) has those two fields decrypted in memory,
  whoever reads them next (pages, API, mail, exports, archives, hooks). A value that does not
  decrypt (altered, or copied from another tenant's row) raises :class:`ClientFieldUnreadable`:
  it is never shown as something else;
* writing: before a flush, a new or changed plaintext value of a tenant under protection is
  encrypted; after the flush the in-memory object holds the plaintext again (as committed, so
  nothing is written twice).

The prefix begins with a control character (U+001F) that the rules for typed text refuse in
phones and notes, so no value a person typed can pass for an encrypted one.

Rows written before protection was asked are encrypted by :func:`seal_stored`: right after a
plugin change that leaves the tenant under protection (a bounded number of short
transactions), then a slice per tick (core's ``on_schedule`` task) until none is left, so a big
tenant never holds a long lock and an interrupted sweep simply carries on. Turning protection off
decrypts nothing: the stored values stay encrypted and keep reading in clear.

May use: :mod:`bookwell.core.pluginhost`, :mod:`bookwell.core.audit`,
:mod:`bookwell.core.storage`, :mod:`bookwell.core.foundation`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from flask import Flask, current_app, g, has_app_context, has_request_context, request
from sqlalchemy import and_, event, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import get_history, set_committed_value

from bookwell.core import audit
from bookwell.core.context import make_context
from bookwell.core.context.secrets import SecretUnreadable, TenantSecrets
from bookwell.core.foundation import clock
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.pluginhost.host import PluginFailed, host_of
from bookwell.core.storage import db, keys
from bookwell.core.storage.models import Booking, OutboxMessage, Tenant
from bookwell.hooks import DataProtection

log = logging.getLogger("bookwell.protection")

ENCRYPTED_PREFIX = "\x1fbwenc1:"
CLIENT_FIELDS = ("client_phone", "client_notes")
# The copies of those fields a business's mail may hold (a provider's notice names the client's
# phone and notes), kept as they were composed: encrypted at rest alike.
MAIL_FIELDS = ("text_body", "html_body", "ics")
PROTECTED: dict[type, tuple[str, ...]] = {Booking: CLIENT_FIELDS, OutboxMessage: MAIL_FIELDS}
EVERYTHING = DataProtection(audit_views=True, encrypt_client_fields=True)
NOTHING = DataProtection()
SWEEP_BATCH = 200  # rows per transaction: each is short whatever the tenant's size
SWEEP_BATCHES_AT_CHANGE = 25  # right after a plugin change; the ticks carry on from there
SWEEP_BATCHES_PER_TICK = 25
_SEALED_IN_FLUSH = "bookwell.protection.sealed"


class ViewNotAudited(RuntimeError):
    """A view the tenant's plugins want audited could not be written to the trail: the view is
    refused (503) rather than shown unaudited."""


class ClientFieldUnreadable(RuntimeError):
    """A stored client field carries the encrypted prefix but does not decrypt with its row's
    tenant's key: altered, or copied from another tenant's row."""


# --- what the plugins ask ------------------------------------------------------------------------


def protection_for(
    session: Session, tenant: Tenant, now: datetime, app: Flask | None = None
) -> DataProtection:
    """The union of the ``data_protection`` answers of ``tenant``'s enabled plugins, asked once
    per request (or app context) and plugin state. Fails closed: a broken enabled plugin, or one
    whose hook fails, counts as asking for everything."""
    app = app or current_app._get_current_object()
    host = host_of(app)
    state = host.state_for(session, tenant.id)
    memo = g.setdefault("data_protection", {}) if has_app_context() else {}
    key = (tenant.id, state.version, id(state))
    if key not in memo:
        memo[key] = _asked(host, make_context(tenant, now), state.settings, state.broken)
    return memo[key]


def _asked(host, ctx, enabled, broken) -> DataProtection:
    if broken:
        log.error("plugins %s are enabled but broken: client data fully protected", broken)
        return EVERYTHING
    try:
        answers = host.contributions("data_protection", ctx, enabled)
    except PluginFailed as failure:
        log.error("data_protection failed (%s): client data fully protected", failure)
        return EVERYTHING
    audit_views = encrypt = False
    for name, answer in answers:
        if not isinstance(answer, DataProtection):
            log.error("plugin %s: data_protection returned %r; fully protected", name, answer)
            host.note_failure(ctx, name, "data_protection", f"returned {type(answer).__name__}")
            return EVERYTHING
        audit_views = audit_views or bool(answer.audit_views)
        encrypt = encrypt or bool(answer.encrypt_client_fields)
    return DataProtection(audit_views=audit_views, encrypt_client_fields=encrypt)


# --- audited views -------------------------------------------------------------------------------


def audit_view(
    tenant: Tenant,
    actor: Any,
    subject_kind: str,
    subjects: Sequence[str],
    *,
    listing: str | None = None,
) -> bool:
    """Record that ``actor`` (staff or platform support) saw client details, when a plugin of
    ``tenant`` asks for view auditing; returns whether an entry was written. Call it after the
    data is read and before the answer is rendered.

    ``subject_kind`` is ``"booking"`` (``subjects``: references) or ``"client"`` (``subjects``:
    the clients' e-mail addresses). One subject and no ``listing`` is one entry about it
    (``booking:<reference>``, ``client:<e-mail>``); a page or answer that lists several (an
    agenda) is one entry whose subject is ``listing`` (e.g. ``bookings:2026-03-02..2026-03-08``)
    and whose details name every one of them, so the trail says whose details were on screen.

    Commits the entry on its own (a view changes nothing else); :class:`ViewNotAudited` when it
    cannot be written, and the caller refuses the view."""
    if subject_kind not in ("booking", "client"):
        raise ValueError(f"no such kind of view: {subject_kind!r}")
    app = current_app._get_current_object()
    now = clock.now(app)
    if not protection_for(db.session(), tenant, now, app).audit_views:
        return False
    subjects = list(subjects)
    if listing is None and len(subjects) == 1:
        subject, details = f"{subject_kind}:{subjects[0]}", None
    else:
        subject = listing or f"{subject_kind}s"
        field = "references" if subject_kind == "booking" else "clients"
        details = {field: subjects, "count": len(subjects)}
    try:
        audit.record_separately(
            app,
            tenant_id=tenant.id,
            actor=audit.actor_label(actor),
            ip=request.remote_addr if has_request_context() else None,
            action=f"{subject_kind}.viewed",
            subject=subject,
            details=details,
            now=now,
        )
    except Exception as error:
        log.exception("a view of %s in tenant %s could not be audited", subject, tenant.id)
        raise ViewNotAudited(f"the view of {subject} could not be audited") from error
    return True


# --- client fields encrypted at rest -------------------------------------------------------------


def is_encrypted(value: object) -> bool:
    return isinstance(value, str) and value.startswith(ENCRYPTED_PREFIX)


def encrypt_field(app: Flask, tenant_id: int, value: str) -> str:
    return ENCRYPTED_PREFIX + TenantSecrets(app, tenant_id).encrypt(value.encode())


def decrypt_field(app: Flask, tenant_id: int, value: str) -> str:
    """``value`` as stored, in clear: an encrypted one decrypted with ``tenant_id``'s key."""
    if not is_encrypted(value):
        return value
    try:
        return TenantSecrets(app, tenant_id).decrypt(value[len(ENCRYPTED_PREFIX) :]).decode()
    except (SecretUnreadable, UnicodeDecodeError) as error:
        raise ClientFieldUnreadable(
            f"a client field of tenant #{tenant_id} does not decrypt with its key: altered, or "
            "another business's"
        ) from error


def mail_at_rest(
    session: Session, tenant: Tenant, now: datetime, app: Flask, values: dict[str, Any]
) -> dict[str, Any]:
    """``values`` (outbox columns) as a write that bypasses the ORM must store them for
    ``tenant``: the mail's text sealed (:func:`sealed_mail`) if the tenant is under protection,
    as a flush would seal it; else as they are."""
    if protection_for(session, tenant, now, app).encrypt_client_fields:
        return sealed_mail(app, tenant.id, values)
    return values


def sealed_mail(app: Flask, tenant_id: int, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (outbox columns) with the mail's text encrypted as a flush would encrypt it:
    for a write that bypasses the ORM (a placeholder turned into its message in one UPDATE).
    The caller has asked :func:`protection_for` and found the tenant under protection."""
    return {
        name: encrypt_field(app, tenant_id, value)
        if name in MAIL_FIELDS and isinstance(value, str) and not is_encrypted(value)
        else value
        for name, value in values.items()
    }


def prepare_writes(session: Session, tenant: Tenant, now: datetime) -> DataProtection:
    """Ask what protection ``tenant`` is under before a write transaction, and make the
    tenant's data key then if it is needed: made inside a transaction on SQLite, it would wait
    for the lock its own thread holds."""
    app = current_app._get_current_object()
    protection = protection_for(session, tenant, now, app)
    if protection.encrypt_client_fields:
        keys.data_key(app, tenant.id)
    return protection


def _app_of(session: Session | None) -> Flask:
    app = session.info.get(db.SESSION_APP) if session is not None else None
    return app if app is not None else current_app._get_current_object()


def _decrypt_loaded(target: Booking | OutboxMessage, context: Any, attributes: Any = None) -> None:
    for name in PROTECTED[type(target)]:
        if attributes is not None and name not in attributes:
            continue
        value = target.__dict__.get(name)
        if is_encrypted(value):
            app = _app_of(getattr(context, "session", None))
            set_committed_value(target, name, decrypt_field(app, target.tenant_id, value))


def _encrypt_before_flush(session: Session, _flush_context: Any, _instances: Any) -> None:
    pending = [
        (row, name, value)
        for row in (*session.new, *session.dirty)
        if type(row) in PROTECTED and row.tenant_id is not None
        for name in PROTECTED[type(row)]
        if isinstance(value := row.__dict__.get(name), str)
        and not is_encrypted(value)
        and (row in session.new or get_history(row, name).has_changes())
    ]
    if not pending:
        return
    app = _app_of(session)
    now = clock.now(app)
    sealed = session.info.setdefault(_SEALED_IN_FLUSH, [])
    protected: dict[int, bool] = {}
    for booking, name, value in pending:
        tenant_id = booking.tenant_id
        if tenant_id not in protected:
            tenant = session.get(Tenant, tenant_id)
            protected[tenant_id] = tenant is not None and (
                protection_for(session, tenant, now, app).encrypt_client_fields
            )
        if protected[tenant_id]:
            setattr(booking, name, encrypt_field(app, tenant_id, value))
            sealed.append((booking, name, value))


def _clear_again_after_flush(session: Session, _flush_context: Any) -> None:
    # Those who read the booking next in this session (mail, the answer) see it in clear.
    for booking, name, value in session.info.pop(_SEALED_IN_FLUSH, ()):
        set_committed_value(booking, name, value)


def _forget_on_rollback(session: Session, *_args: Any) -> None:
    session.info.pop(_SEALED_IN_FLUSH, None)


# --- rows written before protection was asked ----------------------------------------------------


def _plaintext(column):
    return and_(column.is_not(None), ~column.startswith(ENCRYPTED_PREFIX, autoescape=True))


def seal_stored(app: Flask, tenant_id: int, *, batches: int) -> int:
    """Encrypt up to ``batches`` x :data:`SWEEP_BATCH` of ``tenant_id``'s stored plaintext
    phones and notes, each batch in a short write transaction of its own, then as many of its
    mails (which may copy them); returns how many rows were encrypted. The caller has checked
    that the tenant is under protection and that its data key exists (:func:`prepare_writes`)."""
    return _seal_bookings(app, tenant_id, batches=batches) + _seal_mail(
        app, tenant_id, batches=batches
    )


def _seal_mail(app: Flask, tenant_id: int, *, batches: int) -> int:
    done = 0
    columns = [getattr(OutboxMessage, name) for name in MAIL_FIELDS]
    for _ in range(batches):
        with db.write_transaction(app) as session:
            rows = session.execute(
                select(OutboxMessage.id, *columns)
                .where(
                    OutboxMessage.tenant_id == tenant_id,
                    # A placeholder holds no text yet; composing it encrypts what it writes.
                    OutboxMessage.compose_event.is_(None),
                    or_(*(_plaintext(column) for column in columns)),
                )
                .order_by(OutboxMessage.id)
                .limit(SWEEP_BATCH)
            ).all()
            for message_id, *values in rows:
                stored = dict(zip(MAIL_FIELDS, values, strict=True))
                sealed = {
                    name: encrypt_field(app, tenant_id, value)
                    for name, value in stored.items()
                    if value is not None and not is_encrypted(value)
                }
                # Only where the row still holds what was read: a change meanwhile wins.
                session.execute(
                    update(OutboxMessage)
                    .where(
                        OutboxMessage.id == message_id,
                        *(
                            getattr(OutboxMessage, name).is_(None)
                            if value is None
                            else getattr(OutboxMessage, name) == value
                            for name, value in stored.items()
                        ),
                    )
                    .values(**sealed)
                    .execution_options(synchronize_session=False)
                )
        done += len(rows)
        if len(rows) < SWEEP_BATCH:
            break
    return done


def _seal_bookings(app: Flask, tenant_id: int, *, batches: int) -> int:
    done = 0
    for _ in range(batches):
        with db.write_transaction(app) as session:
            rows = session.execute(
                select(Booking.id, Booking.client_phone, Booking.client_notes)
                .where(
                    Booking.tenant_id == tenant_id,
                    or_(_plaintext(Booking.client_phone), _plaintext(Booking.client_notes)),
                )
                .order_by(Booking.id)
                .limit(SWEEP_BATCH)
            ).all()
            for booking_id, phone, notes in rows:
                values = {
                    name: encrypt_field(app, tenant_id, value)
                    for name, value in (("client_phone", phone), ("client_notes", notes))
                    if value is not None and not is_encrypted(value)
                }
                # Only where the row still holds what was read: a change meanwhile wins.
                session.execute(
                    update(Booking)
                    .where(
                        Booking.id == booking_id,
                        Booking.client_phone.is_(None)
                        if phone is None
                        else Booking.client_phone == phone,
                        Booking.client_notes.is_(None)
                        if notes is None
                        else Booking.client_notes == notes,
                    )
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
        done += len(rows)
        if len(rows) < SWEEP_BATCH:
            break
    return done


def sweep(app: Flask, tenant_id: int, now: datetime, *, batches: int) -> int:
    """When ``tenant_id`` is under ``encrypt_client_fields``, encrypt a bounded slice of its
    plaintext rows (:func:`seal_stored`); returns how many. Call it outside any transaction."""
    with db.fresh_session(app) as reader:
        tenant = reader.get(Tenant, tenant_id)
        if tenant is None:
            return 0
        with app.app_context():  # a memo of its own: the plugin state may have just changed
            if not prepare_writes(reader, tenant, now).encrypt_client_fields:
                return 0
    return seal_stored(app, tenant_id, batches=batches)


def _after_plugin_change(app: Flask, tenant_id: int, now: datetime) -> None:
    try:
        sealed = sweep(app, tenant_id, now, batches=SWEEP_BATCHES_AT_CHANGE)
    except Exception:
        # The change stands; new writes are protected already, and the ticks finish the rest.
        log.exception("client fields of tenant %s: sweep after a plugin change failed", tenant_id)
        return
    if sealed:
        log.info("client fields of tenant %s: %d stored rows encrypted", tenant_id, sealed)


def sweep_on_tick(app: Flask, tenant_id: int, now: datetime) -> int:
    """The per-tick slice of the sweep; logs rather than raises (the tick carries on)."""
    try:
        return sweep(app, tenant_id, now, batches=SWEEP_BATCHES_PER_TICK)
    except Exception:
        log.exception("client fields of tenant %s: sweep failed; tried again next tick", tenant_id)
        return 0


def init_app(app: Flask) -> None:
    plugin_changes.after_change(app, _after_plugin_change)
    if not event.contains(Booking, "load", _decrypt_loaded):
        for protected in PROTECTED:
            event.listen(protected, "load", _decrypt_loaded)
            event.listen(protected, "refresh", _decrypt_loaded)
        event.listen(Session, "before_flush", _encrypt_before_flush)
        event.listen(Session, "after_flush_postexec", _clear_again_after_flush)
        event.listen(Session, "after_soft_rollback", _forget_on_rollback)
