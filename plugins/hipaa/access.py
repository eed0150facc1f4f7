"""Time-limited access, recorded through ``ctx.grants`` (core audits each grant and
revocation, and its permission checks consult the live ones):

* **support access**: the owner lets platform support read the business's data for 1 to 72
  hours, with a reason; the plugin's ``before_data_access`` lets support in only while such a
  grant is live. Revocable at any time.
* **emergency access** ("break glass", 45 CFR 164.312(a)(2)(ii)): a staff member whose role
  does not read every booking takes ``bookings.read`` on one client's record for one hour by
  writing a reason. The owners are e-mailed at once, without the client or the reason (mail
  is not the place for them): the owner's page shows both."""

from __future__ import annotations

from flask_babel import force_locale, gettext

from bookwell.hooks import Context, Grant

SUPPORT = "support"
READ = "bookings.read"
SUPPORT_HOURS = (1, 72)
EMERGENCY_HOURS = 1


def client_subject(email: str) -> str:
    return "client:" + email.strip().casefold()


def support_let_in(ctx: Context) -> bool:
    """Whether the owner's grant to platform support is live now."""
    if ctx.grants is None:
        # Whether support was let in cannot be told: the guard fails, and the access is refused.
        raise RuntimeError("hipaa: no ctx.grants to consult for platform support's access")
    return bool(ctx.grants.active(role=SUPPORT))


def grant_support(ctx: Context, *, hours: int, reason: str, owner_id: int) -> Grant:
    low, high = SUPPORT_HOURS
    if not low <= hours <= high:
        raise ValueError(f"support access lasts {low} to {high} hours")
    return ctx.grants.give(
        permission=READ, role=SUPPORT, hours=hours, reason=reason, granted_by=owner_id
    )


def support_grants(ctx: Context) -> tuple[list[Grant], list[Grant]]:
    """Support's grants: ``(live, ended)``, newest first."""
    live = [grant for grant in ctx.grants.active(role=SUPPORT)]
    live_ids = {grant.id for grant in live}
    ended = [
        grant
        for grant in ctx.grants.history()
        if grant.role == SUPPORT and grant.id not in live_ids and grant.plugin == ctx.plugin
    ]
    return live, ended


def emergency_grants(ctx: Context) -> list[Grant]:
    """Every emergency access taken through this plugin, newest first."""
    return [
        grant
        for grant in ctx.grants.history()
        if grant.user_id is not None and grant.plugin == ctx.plugin
    ]


def revoke_support(ctx: Context, grant_id: int, owner_id: int) -> bool:
    """End one of support's grants now; ``False`` for anything else (another business's, an
    emergency access, one already ended)."""
    if not any(grant.id == grant_id for grant in ctx.grants.active(role=SUPPORT)):
        return False
    return ctx.grants.revoke(grant_id, revoked_by=owner_id)


def break_glass(ctx: Context, *, email: str, reason: str) -> Grant:
    """``ctx.actor`` takes ``bookings.read`` on the record of the client ``email`` for one
    hour; the owners are told."""
    user = ctx.actor
    grant = ctx.grants.give(
        permission=READ,
        user_id=user.id,
        subject=client_subject(email),
        hours=EMERGENCY_HOURS,
        reason=reason,
        granted_by=user.id,
    )
    # Core's own entry (access.granted) has the reason; this one says it was a break glass.
    ctx.audit(
        "emergency_access.taken",
        grant.subject,
        {"grant": grant.id, "user": user.id, "role": user.role, "until": grant.expires_at},
    )
    for owner in ctx.data.staff(roles=("owner",)):
        # A plugin's mail speaks the business's language, as core's notices do.
        with force_locale(ctx.tenant.language):
            subject = gettext("Emergency access taken at %(business)s", business=ctx.tenant.name)
            text = gettext(
                "Hello %(owner)s,\n\n"
                "%(name)s (%(email)s, %(role)s) just took emergency "
                "access to a client's record for one hour, giving a reason.\n\n"
                'Which client and why are on the page "HIPAA: support access" of the staff '
                'pages, under "Emergency access", and in the audit trail. If it was not '
                "justified, take it up with them.",
                owner=owner.name or owner.email,
                name=user.name or user.email,
                email=user.email,
                role=user.role,
            )
        ctx.data.send_mail(
            to=owner.email, subject=subject, text=text, kind="hipaa.emergency_access"
        )
    return grant
