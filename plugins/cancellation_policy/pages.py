"""The plugin's pages: the policy as clients read it, and the staff's block list."""

from __future__ import annotations

import re
from typing import Any

from email_validator import EmailNotValidError, validate_email
from flask import Blueprint, abort, flash, redirect, render_template
from flask_babel import gettext, lazy_gettext
from flask_wtf import FlaskForm  # type: ignore[import-untyped,unused-ignore]
from wtforms import StringField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from bookwell.hooks.pages import plugin_context, plugin_settings, render_staff_page, require_staff

from . import blocks, policy

blueprint = Blueprint("cancellation_policy", __name__, template_folder="templates")
STAFF = "/admin/<slug>/cancellation_policy"
# One line of printable text: no control characters (NUL, escape, line breaks...).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _one_line(form: Any, field: Any) -> None:
    if field.data and _CONTROL.search(field.data):
        raise ValidationError(gettext("Use one line of text, without control characters."))


class BlockForm(FlaskForm):  # type: ignore[misc,unused-ignore]
    client = StringField(
        lazy_gettext("Client's e-mail or phone"),
        validators=[
            _one_line,
            DataRequired(lazy_gettext("Give the client's e-mail address or phone number.")),
            Length(max=254, message=lazy_gettext("At most 254 characters.")),
        ],
    )
    reason = StringField(
        lazy_gettext("Reason"),
        validators=[
            _one_line,
            DataRequired(lazy_gettext("Give a reason.")),
            Length(max=500, message=lazy_gettext("At most 500 characters.")),
        ],
    )


class UnblockForm(FlaskForm):  # type: ignore[misc,unused-ignore]
    reason = StringField(
        lazy_gettext("Reason"),
        validators=[
            _one_line,
            Optional(),
            Length(max=500, message=lazy_gettext("At most 500 characters.")),
        ],
    )


@blueprint.get("/book/<slug>/cancellation_policy/")
def public_policy(slug: str) -> Any:
    settings = plugin_settings(slug)
    ctx = plugin_context(slug)
    paragraphs = [part for part in policy.full_text(settings).split("\n\n") if part.strip()]
    return render_template(
        "cancellation_policy/policy.html", tenant=ctx.tenant, paragraphs=paragraphs
    )


def _page(slug: str, page: Any, form: Any, status: int = 200, errors: list[str] | None = None):
    ctx = plugin_context(slug)
    settings = plugin_settings(slug)
    entries = blocks.listed(ctx)
    for entry in entries:
        if entry["email"] and ctx.store is not None:
            entry["no_shows"] = ctx.store.get("no_shows:" + entry["digest"], 0)
    return render_staff_page(
        page,
        "cancellation_policy/staff.html",
        status,
        settings=settings,
        summary=policy.summary(settings).splitlines(),
        entries=entries,
        form=form,
        unblock_form=UnblockForm(formdata=None),
        errors=errors or [],
    )


@blueprint.get(f"{STAFF}/")
def staff_page(slug: str) -> Any:
    page = require_staff(slug, "bookings.read", "cancellation_policy")
    return _page(slug, page, BlockForm(formdata=None))


def _kind_of(value: str) -> tuple[str, str | None]:
    """(kind, problem) for what staff typed: an address if it has an @, else a phone."""
    if "@" in value:
        try:
            validate_email(value, check_deliverability=False)
        except EmailNotValidError:
            return blocks.EMAIL, gettext("That is not a valid e-mail address.")
        return blocks.EMAIL, None
    if blocks.normal_phone(value) is None:
        return blocks.PHONE, gettext(
            "Give an e-mail address, or a phone number of at least %(count)s digits.",
            count=blocks.MIN_PHONE_DIGITS,
        )
    return blocks.PHONE, None


@blueprint.post(f"{STAFF}/blocks")
def add_block(slug: str) -> Any:
    page = require_staff(slug, "bookings.manage", "cancellation_policy")
    form = BlockForm()
    if not form.validate_on_submit():
        return _page(slug, page, form, 422)
    value, reason = form.client.data.strip(), form.reason.data.strip()
    kind, problem = _kind_of(value)
    ctx = plugin_context(slug)
    if problem is None:
        added, problem = blocks.block(ctx, kind, value, reason, f"user:{page.user.id}")
        if problem is None and not added:
            problem = gettext("That client is already blocked.")
    if problem is not None:
        form.client.errors = [problem]
        return _page(slug, page, form, 422)
    subject = f"client:{blocks.normal_email(value)}" if kind == blocks.EMAIL else "client:phone"
    ctx.audit("client.blocked", subject, {"kind": kind, "reason": reason})
    flash(gettext("The client is blocked from booking and changing bookings online."))
    return redirect(f"/admin/{slug}/cancellation_policy/")


@blueprint.post(f"{STAFF}/blocks/<int:block_id>/remove")
def remove_block(slug: str, block_id: int) -> Any:
    page = require_staff(slug, "bookings.manage", "cancellation_policy")
    form = UnblockForm()
    if not form.validate_on_submit():
        return _page(
            slug, page, BlockForm(formdata=None), 422, [gettext("Your form expired; try again.")]
        )
    ctx = plugin_context(slug)
    removed = blocks.unblock(ctx, block_id)
    if removed is None:
        abort(404)
    subject = f"client:{removed['email']}" if removed["email"] else "client:phone"
    ctx.audit(
        "client.unblocked",
        subject,
        {"kind": removed["kind"], "reason": (form.reason.data or "").strip() or None},
    )
    flash(gettext("The client may book online again."))
    return redirect(f"/admin/{slug}/cancellation_policy/")
