"""Password policy: the rules every new password is held to, and a lockout after failed logins.

- **Rules** (``before_password_set``, wherever a password is set: sign-up, change, reset, an
  invitation, ``bookwell users create``): a minimum length, optional character classes, none of
  the 30,000 most common passwords (zxcvbn's list, compared case-insensitively), and nothing of
  the account's e-mail address, name or the business's name. One refusal lists every rule
  broken. ``password_rules`` gives the same rules in words, for core to show beside every
  password field. Only accounts whose role is in ``roles`` are held to them.
- **Lockout** (``before_password_check``, ``before_login``, ``after_login_failed``,
  ``after_login``): see :mod:`.lockout`. Owners lift locks on a staff page of the plugin's
  (``/admin/<slug>/password_policy/``), operators with ``bookwell password_policy unlock``.

For platform support's accounts the operator switches it on in ``SUPPORT_PLUGINS``; their counts
are kept in the instance's store.
"""

from __future__ import annotations

from flask_babel import gettext, lazy_gettext

from bookwell.hooks import Context, Manifest, MenuItem, Refusal, Setting, hookimpl

from . import lockout, rules
from .pages import operator_commands, pages

ROLES = ("owner", "manager", "staff", "receptionist", "client")
CLASS_HELP = lazy_gettext(
    "Off by default: NIST SP 800-63B and OWASP ASVS advise against forcing character classes, "
    "which make passwords harder to remember without making them harder to guess "
    '("Password1!"). A longer minimum length protects better.'
)

MANIFEST = Manifest(
    name="password_policy",
    title=lazy_gettext("Password policy"),
    description=lazy_gettext(
        "Long passwords, never a common one nor one made of the person's name or e-mail, and "
        "accounts locked for a while after too many failed logins."
    ),
    version="1.0.0",
    category="Security",
    author="Bookwell",
    settings=(
        Setting(
            "min_length",
            "int",
            15,
            lazy_gettext("Minimum length"),
            help=lazy_gettext(
                "Characters a new password needs at least (8 to 64). NIST advises 15 where the "
                "password is the only factor. Passwords of 64 characters and more are always "
                "allowed, spaces included."
            ),
            min=8,
            max=64,
        ),
        Setting(
            "require_upper",
            "bool",
            False,
            lazy_gettext("Require a capital letter"),
            help=CLASS_HELP,
        ),
        Setting(
            "require_lower",
            "bool",
            False,
            lazy_gettext("Require a lower-case letter"),
            help=CLASS_HELP,
        ),
        Setting("require_digit", "bool", False, lazy_gettext("Require a digit"), help=CLASS_HELP),
        Setting("require_symbol", "bool", False, lazy_gettext("Require a symbol"), help=CLASS_HELP),
        Setting(
            "refuse_common",
            "bool",
            True,
            lazy_gettext("Refuse common passwords"),
            help=lazy_gettext(
                "Refuse the 30,000 most common passwords (zxcvbn's list), in any case."
            ),
        ),
        Setting(
            "max_attempts",
            "int",
            5,
            lazy_gettext("Failed logins before a lock"),
            help=lazy_gettext(
                "Failed logins (wrong password or wrong one-time code) an account may have "
                "before it is locked (3 to 100). One IP address may fail ten times as many per "
                "hour across all accounts before its logins are refused until the hour ends."
            ),
            min=3,
            max=100,
        ),
        Setting(
            "lockout_minutes",
            "int",
            15,
            lazy_gettext("Minutes locked"),
            help=lazy_gettext(
                "How long the first lock lasts (1 to 1440); each further lock of the same "
                "account within a day doubles it, up to 24 hours. Every account is locked "
                "alike, whatever its role, so that a lock tells nobody who has an account."
            ),
            min=1,
            max=1440,
        ),
        Setting(
            "roles",
            "list",
            list(ROLES),
            lazy_gettext("Password rules apply to"),
            help=lazy_gettext("The roles whose new passwords are held to the rules above."),
            choices=ROLES,
        ),
    ),
)


@hookimpl
def before_password_set(ctx: Context, settings, password: str) -> Refusal | None:
    if not rules.covers(ctx, settings):
        return None
    broken = rules.broken_rules(ctx, settings, password)
    return rules.refusal(broken) if broken else None


@hookimpl
def password_rules(ctx: Context, settings) -> list[str] | None:
    if not rules.covers(ctx, settings):
        return None
    return rules.described_rules(ctx, settings)


@hookimpl
def before_password_check(ctx: Context, settings) -> Refusal | None:
    if ctx.store is None:  # no store to count in (support, with no instance store)
        return None
    return lockout.Attempt(ctx, settings).reserve()


@hookimpl
def before_login(ctx: Context, settings) -> Refusal | None:
    """A lock set while the password was checked wins; and a further step's answer typed on a
    page of its own (which never passed ``before_password_check``) takes its guess here."""
    if ctx.store is None:
        return None
    attempt = lockout.Attempt(ctx, settings)
    locked_until = ctx.store.get(attempt.lock)
    if locked_until is not None:
        attempt.release()
        return lockout.locked_refusal(ctx, locked_until)
    if ctx.login.answers and not attempt.reserved():
        return attempt.reserve()
    return None


@hookimpl
def after_login_failed(ctx: Context, settings, reason: str) -> None:
    # Our own `locked` refusal took no guess (and gave back any it had taken).
    if ctx.store is None or reason == lockout.LOCKED:
        return
    lockout.Attempt(ctx, settings).settle_failure(reason)


@hookimpl
def after_login(ctx: Context, settings) -> None:
    if ctx.store is not None:
        lockout.Attempt(ctx, settings).settle_success()


@hookimpl
def routes():
    return pages


@hookimpl
def staff_menu(ctx: Context) -> list[MenuItem] | None:
    if ctx.actor is None or ctx.actor.role != "owner":
        return None
    return [MenuItem(gettext("Locked accounts"), f"/admin/{ctx.tenant.slug}/password_policy/")]


@hookimpl
def commands():
    return operator_commands
