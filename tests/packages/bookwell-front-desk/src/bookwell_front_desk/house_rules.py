"""Who accepted which version of the house rules (the ``front_desk_acceptances`` table)."""

from sqlalchemy.exc import IntegrityError

from .tables import acceptances

SCOPE = "house_rules"
PENDING_CODE = "house_rules_pending"


def accept_path(slug):
    return f"/api/v1/tenants/{slug}/front_desk/house_rules"


def pending_key(user_id):
    return f"rules_pending:{user_id}"


def has_accepted(ctx, user_id, version):
    return bool(
        ctx.tables.select(
            acceptances,
            acceptances.c.user_id == user_id,
            acceptances.c.rules_version == version,
            limit=1,
        )
    )


def record_acceptance(ctx, user, version):
    """Record that ``user`` accepted ``version``; ``False`` if that was already recorded."""
    if has_accepted(ctx, user.id, version):
        return False
    try:
        ctx.tables.insert(
            acceptances,
            user_id=user.id,
            user_email=user.email.lower(),
            rules_version=version,
            accepted_at=ctx.now,
        )
    except IntegrityError:  # the same acceptance, sent twice at once: the other one recorded it
        return False
    return True
