"""The e-mails an account gets when its second factor changes: set up, codes renewed, reset.
Each tells the person what happened and what to do if it was not them."""

from __future__ import annotations

from typing import Any

from flask_babel import force_locale, gettext, lazy_gettext

from bookwell.hooks import Context

NOT_YOU = lazy_gettext(
    "If this was not you, tell the business's owner at once and change your password: "
    "someone may know it."
)


def send(
    ctx: Context, to: str, name: str, subject: Any, what: Any, kind: str, **values: str
) -> None:
    """``subject`` and ``what`` are ``lazy_gettext`` texts, read here in the business's
    language (a plugin's mail speaks it, as core's notices do) with ``values`` put in."""
    # Platform support has no business to send mail in the name of (ctx.data is None there).
    if ctx.data is None or ctx.tenant is None:
        return
    with force_locale(ctx.tenant.language):
        written_subject = str(subject)
        text = "\n\n".join(
            (gettext("Hello %(name)s,", name=name), str(what) % values, str(NOT_YOU))
        )
    ctx.data.send_mail(to=to, subject=written_subject, text=text, kind=kind)


def enrolled(ctx: Context, to: str, name: str) -> None:
    send(
        ctx,
        to,
        name,
        lazy_gettext("Two-step login is on for your account"),
        lazy_gettext(
            "An authenticator app was just set up for your account: from now on, logging in "
            "asks for its 6-digit code after your password. Keep your recovery codes "
            "somewhere safe."
        ),
        "two_factor.enrolled",
    )


def recovery_codes_renewed(ctx: Context, to: str, name: str) -> None:
    send(
        ctx,
        to,
        name,
        lazy_gettext("New recovery codes for your account"),
        lazy_gettext(
            "New recovery codes were just made for your account's two-step login; the earlier "
            "ones no longer work."
        ),
        "two_factor.recovery_codes",
    )


def reset(ctx: Context, to: str, name: str, by: str) -> None:
    """``by``: the owner's name, who reset it."""
    send(
        ctx,
        to,
        name,
        lazy_gettext("Two-step login was reset for your account"),
        lazy_gettext(
            "The authenticator app of your account was removed by %(owner)s (the owner). Your "
            "next login will ask you to set one up again (or go without a code, where your "
            "role does not need one)."
        ),
        "two_factor.reset",
        owner=by,
    )
