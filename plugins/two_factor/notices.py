"""The e-mails an account gets when its second factor changes: set up, codes renewed, reset.
Each tells the person what happened and what to do if it was not them."""

from __future__ import annotations

from bookwell.hooks import Context

NOT_YOU = (
    "If this was not you, tell the business's owner at once and change your password: "
    "someone may know it."
)


def send(ctx: Context, to: str, name: str, subject: str, what: str, kind: str) -> None:
    # Platform support has no business to send mail in the name of (ctx.data is None there).
    if ctx.data is None:
        return
    ctx.data.send_mail(
        to=to,
        subject=subject,
        text=f"Hello {name},\n\n{what}\n\n{NOT_YOU}",
        kind=kind,
    )


def enrolled(ctx: Context, to: str, name: str) -> None:
    send(
        ctx,
        to,
        name,
        "Two-step login is on for your account",
        "An authenticator app was just set up for your account: from now on, logging in asks "
        "for its 6-digit code after your password. Keep your recovery codes somewhere safe.",
        "two_factor.enrolled",
    )


def recovery_codes_renewed(ctx: Context, to: str, name: str) -> None:
    send(
        ctx,
        to,
        name,
        "New recovery codes for your account",
        "New recovery codes were just made for your account's two-step login; the earlier "
        "ones no longer work.",
        "two_factor.recovery_codes",
    )


def reset(ctx: Context, to: str, name: str, by: str) -> None:
    send(
        ctx,
        to,
        name,
        "Two-step login was reset for your account",
        f"The authenticator app of your account was removed by {by}. Your next login will ask "
        "you to set one up again (or go without a code, where your role does not need one).",
        "two_factor.reset",
    )
