"""The front desk's staff page (the callback list, who accepted the house rules) and the API
view that records an acceptance."""

from zoneinfo import ZoneInfo

from flask import Blueprint, abort, jsonify, redirect, request, url_for

from bookwell.hooks.pages import (
    csrf_form,
    plugin_context,
    render_staff_page,
    require_api_user,
    require_staff,
)

from .house_rules import SCOPE, pending_key, record_acceptance
from .logins import failures_key
from .tables import acceptances, callbacks

PHONE_SIGNS = " -./()"


def blueprint():
    pages = Blueprint("front_desk", __name__, template_folder="templates")
    pages.add_url_rule("/admin/<slug>/front_desk/", view_func=desk, methods=["GET", "POST"])
    pages.add_url_rule(
        "/admin/<slug>/front_desk/callbacks/<int:callback_id>/done",
        view_func=callback_done,
        methods=["POST"],
    )
    pages.add_url_rule(
        "/api/v1/tenants/<slug>/front_desk/house_rules",
        view_func=accept_house_rules,
        methods=["POST"],
    )
    return pages


def normalised_phone(text):
    """``"+33 6 12-34-56-78"`` as ``"+33612345678"``, or ``None`` if it is no phone number."""
    number = "".join(sign for sign in text.strip() if sign not in PHONE_SIGNS)
    digits = number.removeprefix("+")
    if not (digits.isascii() and digits.isdigit() and 6 <= len(digits) <= 20):
        return None
    return number


def add_callback(ctx, staff, form):
    """Put a client on the callback list; a message per field at fault, else ``{}``."""
    name = form.get("name", "").strip()
    phone = normalised_phone(form.get("phone", ""))
    note = form.get("note", "").strip()
    errors = {}
    if not name or len(name) > 100 or "\n" in name:
        errors["name"] = "Give the client's name (at most 100 characters)."
    if phone is None:
        errors["phone"] = "Give a phone number: digits, and + before the country code."
    if len(note) > 500:
        errors["note"] = "Keep the note under 500 characters."
    if errors:
        return errors
    # The digest finds this number's open callback without decrypting every number.
    digest = ctx.secrets.digest(phone)
    waiting = ctx.tables.select(
        callbacks, callbacks.c.phone_digest == digest, callbacks.c.done_at.is_(None), limit=1
    )
    if waiting:
        ctx.tables.update(
            callbacks,
            callbacks.c.id == waiting[0]["id"],
            asked=waiting[0]["asked"] + 1,
            note=note or waiting[0]["note"],
        )
    else:
        ctx.tables.insert(
            callbacks,
            name=name,
            phone=ctx.secrets.encrypt(phone.encode()),
            phone_digest=digest,
            note=note,
            asked=1,
            taken_by=staff.email,
            created_at=ctx.now,
        )
    return {}


def open_callbacks(ctx):
    rows = ctx.tables.select(callbacks, callbacks.c.done_at.is_(None), order_by=["created_at"])
    for row in rows:
        try:
            row["phone"] = ctx.secrets.decrypt(row["phone"]).decode()
        except ValueError:  # altered, or not this business's: show that, never crash the page
            row["phone"] = None
    return rows


def in_business_time(when, timezone):
    return when.astimezone(ZoneInfo(timezone))  # ctx.tables gives it aware, in UTC


def accepted_rules(ctx):
    rows = ctx.tables.select(acceptances, order_by=[acceptances.c.accepted_at.desc()], limit=100)
    for row in rows:
        row["accepted_at"] = in_business_time(row["accepted_at"], ctx.tenant.timezone)
    return rows


def desk(slug):
    page = require_staff(slug, "bookings.read_own")  # every staff role
    ctx = plugin_context(slug)
    form = csrf_form()
    errors = {}
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        errors = add_callback(ctx, page.user, request.form)
        if not errors:
            return redirect(url_for(".desk", slug=slug), 303)
    return render_staff_page(
        page,
        "front_desk/desk.html",
        status=422 if errors else 200,
        form=form,
        field_errors=errors,
        entered=request.form if errors else {},
        callbacks=open_callbacks(ctx),
        acceptances=accepted_rules(ctx),
        my_failed_logins=ctx.store.get(failures_key(page.user.id), 0),
    )


def callback_done(slug, callback_id):
    require_staff(slug, "bookings.read_own")  # every staff role
    ctx = plugin_context(slug)
    if not csrf_form().validate_on_submit():
        abort(400)
    done = ctx.tables.update(
        callbacks, callbacks.c.id == callback_id, callbacks.c.done_at.is_(None), done_at=ctx.now
    )
    if not done:  # another business's, or already done
        abort(404)
    return redirect(url_for(".desk", slug=slug), 303)


def accept_house_rules(slug):
    caller = require_api_user(slug, scope=SCOPE)
    ctx = plugin_context(slug)
    version = ctx.store.get(pending_key(caller.user.id))
    if version is None:
        message = "There are no house rules waiting for you to accept."
        return jsonify(error={"code": "nothing_to_accept", "message": message}), 409
    if record_acceptance(ctx, caller.user, version):
        ctx.audit(
            "house_rules.accepted",
            f"user:{caller.user.id}",
            {"email": caller.user.email, "version": version},
        )
    ctx.store.delete(pending_key(caller.user.id))
    return jsonify(status="accepted", version=version, next="log in again to continue")
