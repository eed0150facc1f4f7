"""Two-step login with an authenticator app (Google Authenticator and the like), RFC 6238.

After the password, an enrolled account is asked for the app's 6-digit code (or one of its
recovery codes) as a further login step: ``otp_required`` until one is given, ``otp_invalid``
for a wrong one, each with the ``challenge`` that makes every login page ask for it. The roles
in ``required_roles`` must use it: such an account that has not set up an app is let in only to
do that (a login restricted to the scope ``enroll_totp``, code ``otp_enrollment_required``),
through the API (``POST /api/v1/tenants/<slug>/me/totp``, then ``.../me/totp/confirm``) or the
staff page "Two-step login", where everyone else may set it up too.

What it promises:

* The secret is 160 random bits, kept only encrypted with the business's key (so
  ``bookwell keys rotate`` re-wraps it with everything else), and becomes active only once a
  code of it was given: a mistyped set-up never locks anyone out.
* A code is accepted once. The same code again, or one of an earlier step than a code already
  used, is refused, also when two requests race with it (exactly one wins).
* At most 5 wrong codes per account in 15 minutes: then ``locked`` (``details.locked_until``)
  for 15 minutes, right code or not. The plugin keeps this throttle whether or not the business
  also runs ``password_policy``, whose lockout counts the same ``otp_invalid`` failures on its
  own: both hold, and the stricter one decides.
* Ten recovery codes, each good once, kept only as keyed digests, shown once; making new ones
  voids the old ones.
* Owners reset a staff member's set-up from the page "Two-step login: staff" (audited), and
  operators anyone's with ``bookwell two_factor reset --tenant SLUG --email E``. The account
  gets an e-mail whenever its second factor is set up, renewed or reset.
* Support logins: when the operator lists ``two_factor`` among the support plugins
  (``SUPPORT_PLUGINS``, with its own ``required_roles``: ``support`` makes every support
  account use it), a support account is asked for its code in the same way, using the
  instance's store and key, and sets its app up at ``/support/two_factor/``; one that must and
  has not is let in only there. Operators reset one with ``bookwell two_factor reset --support
  --email E``. Where the instance gives no store, a support account that must use it is
  refused (the check cannot run).
"""

from __future__ import annotations

from flask_babel import gettext, lazy_gettext

from bookwell.hooks import Context, Manifest, MenuItem, Redirect, Refusal, Setting, hookimpl

from . import authenticator

ROLES = ("owner", "manager", "staff", "receptionist", "client", "support")
SCOPE = "enroll_totp"
ENROLMENT_REQUIRED = lazy_gettext(
    "Set up two-step login to continue: add this account to an authenticator app "
    "(such as Google Authenticator) and confirm it with a code."
)


def challenge() -> dict[str, str]:
    """The login's further step: the field to add, labelled in the reader's language."""
    return {
        "field": "otp",
        "label": gettext("6-digit code from your authenticator app (or a recovery code)"),
    }


MANIFEST = Manifest(
    name="two_factor",
    title=lazy_gettext("Two-step login (Google Authenticator)"),
    description=lazy_gettext(
        "After the password, a 6-digit code from an authenticator app such as Google "
        "Authenticator: a stolen password alone no longer opens an account. Chosen roles must "
        "use it; anyone may."
    ),
    version="1.0.0",
    category="Security",
    author="Bookwell",
    settings=(
        Setting(
            key="required_roles",
            type="list",
            default=["owner", "manager"],
            label=lazy_gettext("Required for"),
            help=lazy_gettext(
                "Roles that must log in with an authenticator app; the others may choose to. "
                "Someone of these roles without an app set up can do nothing but set one up. "
                "'support' counts only where the operator switches this plugin on for "
                "platform support."
            ),
            choices=ROLES,
        ),
    ),
)


def enrolment_page(ctx: Context) -> str | None:
    """Where a browser sets up an app: the staff or the client side's page of this business,
    or platform support's own."""
    if ctx.actor is None:
        return None
    if ctx.tenant is None:
        return "/support/two_factor/" if ctx.actor.role == "support" else None
    side = "book" if ctx.actor.role == "client" else "admin"
    return f"/{side}/{ctx.tenant.slug}/two_factor/"


@hookimpl
def before_login(ctx: Context, settings) -> Refusal | None:
    user = ctx.actor
    if ctx.store is None or ctx.secrets is None:
        if user.role in settings["required_roles"]:
            # A check that must run and cannot: the login is refused (plugin_failed).
            raise RuntimeError("two_factor has no store for this login (support without one)")
        return None
    if not authenticator.is_enrolled(ctx, user.id):
        if user.role not in settings["required_roles"]:
            return None
        return Refusal(
            str(ENROLMENT_REQUIRED),
            code="otp_enrollment_required",
            grant_scope=SCOPE,
            continue_at=enrolment_page(ctx),
        )
    answer = (ctx.login.answers.get("otp") or "").strip() if ctx.login else ""
    if not answer:
        return Refusal(
            gettext("Enter the 6-digit code from your authenticator app."),
            code="otp_required",
            status=401,
            field="otp",
            challenge=challenge(),
        )
    until = authenticator.reserve_attempt(ctx, user.id)
    if until is not None:
        return Refusal(
            gettext("Too many wrong codes: logging in is paused for this account for a while."),
            code="locked",
            status=401,
            details={"locked_until": until},
        )
    used = authenticator.check_code(ctx, user.id, answer)
    if used is None:
        return Refusal(
            gettext("That code is not right, or was already used. Enter the current code."),
            code="otp_invalid",
            status=401,
            field="otp",
            challenge=challenge(),
        )
    if used == "recovery":
        left = authenticator.recovery_codes_left(ctx, user.id)
        ctx.audit("recovery_code.used", f"user:{user.id}", {"left": left})
    return None


# What a signed-in account that must set up an app may still open: its set-up pages and API,
# and the ways out.
OPEN_UNTIL_ENROLLED = ("/two_factor/", "/me/totp", "/logout", "/login", "/auth/logout")


@hookimpl
def before_request(ctx: Context, settings) -> Refusal | Redirect | None:
    """A session that began before this plugin was switched on (or before the account's role
    was required to use it) gets no further than setting an app up, as a new login would."""
    user = ctx.actor
    if user is None or user.role not in settings["required_roles"] or ctx.request is None:
        return None
    path = ctx.request.path
    if any(part in path for part in OPEN_UNTIL_ENROLLED):
        return None
    if authenticator.is_enrolled(ctx, user.id):
        return None
    page = enrolment_page(ctx)
    if not path.startswith("/api/") and page is not None and ctx.request.method in ("GET", "HEAD"):
        return Redirect(page, status=303)
    return Refusal(
        str(ENROLMENT_REQUIRED),
        code="otp_enrollment_required",
        status=403,
    )


@hookimpl
def staff_menu(ctx: Context) -> list[MenuItem]:
    items = [MenuItem(gettext("Two-step login"), f"/admin/{ctx.tenant.slug}/two_factor/")]
    if ctx.actor is not None and ctx.actor.role == "owner":
        items.append(
            MenuItem(gettext("Two-step login: staff"), f"/admin/{ctx.tenant.slug}/two_factor/staff")
        )
    return items


@hookimpl
def routes():
    from .views import pages

    return pages


@hookimpl
def commands():
    # Not a submodule named "commands": importing it would replace this hook on the package.
    from .operator_commands import two_factor_reset

    return [two_factor_reset]
