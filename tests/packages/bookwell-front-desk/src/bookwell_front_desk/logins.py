"""Failed logins to staff accounts, counted per account in ``ctx.store``."""

from datetime import timedelta

FAILURE_WINDOW = timedelta(hours=1)


def failures_key(user_id):
    return f"failed_logins:{user_id}"
