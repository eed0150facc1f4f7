"""One account's authenticator, kept in the plugin's store: its TOTP secret (encrypted with the
business's key), a pending enrolment, the last time step used, the recovery codes (only their
keyed digests) and the throttle on wrong codes.

Every key names the account by its id, so one business's store holds all its people, and the
store itself is the business's alone (or, for platform support, the instance's).

Codes follow RFC 6238 as Google Authenticator reads it: 6 digits, a 30-second step, the
secret's 160 bits as 32 base32 characters, and one step of drift either way. A code is
accepted once: the step it belongs to must be later than the last step accepted, and the step
is claimed with ``compare_and_set``, so of two requests racing with one code exactly one wins.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
import segno

from bookwell.hooks import Context, UserInfo

DRIFT_STEPS = 1
SECRET_LENGTH = 32  # base32 characters: 160 bits, RFC 4226's recommended length
PENDING_FOR = timedelta(minutes=30)  # a set-up left unfinished lapses
MAX_WRONG_CODES = 5
THROTTLE_WINDOW = timedelta(minutes=15)
RECOVERY_CODES = 10
RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread
RECOVERY_HALF = 5  # two groups of five: 50 bits a code, each usable once
# Compare-and-set retries on the few keys requests change together; each retry means another
# request changed the value, so a handful is plenty before the call is answered as a conflict.
CAS_ATTEMPTS = 20
SUPPORT_ISSUER = "Bookwell support"


class EnrolmentMissing(Exception):
    """There is no pending enrolment to confirm (never started, or it lapsed)."""


@dataclass(frozen=True)
class Enrolment:
    """A pending enrolment, as it is shown: the URI an app reads, the same as a QR code drawn
    on the server (an inline SVG, nothing fetched), and the secret for typing in by hand."""

    secret: str
    otpauth_uri: str
    qr_svg: str


def _secret_key(user_id: int) -> str:
    return f"secret:{user_id}"


def _pending_key(user_id: int) -> str:
    return f"pending:{user_id}"


def _last_step_key(user_id: int) -> str:
    return f"last_step:{user_id}"


def _recovery_key(user_id: int) -> str:
    return f"recovery:{user_id}"


def _tries_key(user_id: int) -> str:
    return f"tries:{user_id}"


def _lock_key(user_id: int) -> str:
    return f"locked:{user_id}"


def email_key(ctx: Context, email: str) -> str:
    """Where an enrolled address's account (``{"id", "email", "name"}``) is found, for the
    operator's reset, under a keyed digest so that no key names an address."""
    return "email:" + ctx.secrets.digest(email.strip().casefold())


PEOPLE_KEY = "people"  # the enrolled staff, for the owner's page: {user_id: {email, name, role}}


def is_enrolled(ctx: Context, user_id: int) -> bool:
    return ctx.store.get(_secret_key(user_id)) is not None


def _decrypt(ctx: Context, token: str) -> str:
    return ctx.secrets.decrypt(token).decode("ascii")


def _issuer(ctx: Context) -> str:
    return ctx.tenant.name if ctx.tenant is not None else SUPPORT_ISSUER


def _shown(ctx: Context, user: UserInfo, secret: str) -> Enrolment:
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=_issuer(ctx))
    qr = segno.make(uri, error="m")
    svg = qr.svg_inline(scale=5, dark="#000", light="#fff", title="QR code of your set-up key")
    return Enrolment(secret=secret, otpauth_uri=uri, qr_svg=svg)


def start_enrolment(ctx: Context, user: UserInfo, *, fresh: bool = True) -> Enrolment:
    """A pending enrolment for ``user``: a new secret (``fresh``), or the one already pending.
    The active secret, if any, stays in force until a code of the new one is confirmed."""
    token = None if fresh else ctx.store.get(_pending_key(user.id))
    if token is None:
        secret = pyotp.random_base32(length=SECRET_LENGTH)
        token = ctx.secrets.encrypt(secret.encode("ascii"))
        ctx.store.set(_pending_key(user.id), token, expires_at=ctx.now + PENDING_FOR)
    return _shown(ctx, user, _decrypt(ctx, token))


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step within the drift whose code ``code`` is, or ``None``."""
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _claim_step(ctx: Context, user_id: int, step: int) -> bool:
    """Record ``step`` as the last one used, if it is later than the last one: a code is good
    once, and never after a later one. Exactly one of two racing claims of a step wins."""
    key = _last_step_key(user_id)
    for _ in range(CAS_ATTEMPTS):
        last = ctx.store.get(key)
        if last is not None and step <= last:
            return False
        if ctx.store.compare_and_set(key, last, step):
            return True
    return False


def _normalised_recovery(code: str) -> str:
    return "".join(code.split()).replace("-", "").upper()


def _recovery_digest(ctx: Context, user_id: int, code: str) -> str:
    return ctx.secrets.digest(f"{user_id}:{_normalised_recovery(code)}")


def new_recovery_codes(ctx: Context, user_id: int) -> list[str]:
    """Ten new recovery codes, returned once to be shown; only their digests are kept, and
    they replace the earlier ones."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(2 * RECOVERY_HALF))
        codes.append(f"{raw[:RECOVERY_HALF]}-{raw[RECOVERY_HALF:]}")
    ctx.store.set(_recovery_key(user_id), [_recovery_digest(ctx, user_id, c) for c in codes])
    return codes


def recovery_codes_left(ctx: Context, user_id: int) -> int:
    return len(ctx.store.get(_recovery_key(user_id)) or [])


def _use_recovery_code(ctx: Context, user_id: int, code: str) -> bool:
    """True once per code: the list without it replaces the list with it only if nobody else
    changed it meanwhile, so of two requests racing with one code exactly one gets through."""
    normalised = _normalised_recovery(code)
    if len(normalised) != 2 * RECOVERY_HALF or not normalised.isalnum():
        return False
    digest = _recovery_digest(ctx, user_id, code)
    key = _recovery_key(user_id)
    for _ in range(CAS_ATTEMPTS):
        left = ctx.store.get(key) or []
        if digest not in left:
            return False
        if ctx.store.compare_and_set(key, left, [d for d in left if d != digest]):
            return True
    return False


def locked_until(ctx: Context, user_id: int) -> str | None:
    """When the throttle lets this account try codes again, if it is holding them back now."""
    until: str | None = ctx.store.get(_lock_key(user_id))
    return until


def reserve_attempt(ctx: Context, user_id: int) -> str | None:
    """Count one code about to be checked; ``None`` when it may be, else until when the
    account is held back. Counting before checking keeps the limit exact when many codes come
    at once: the sixth of six simultaneous guesses is never checked."""
    until = locked_until(ctx, user_id)
    if until is not None:
        return until
    tries = ctx.store.increment(_tries_key(user_id), expires_at=ctx.now + THROTTLE_WINDOW)
    if tries <= MAX_WRONG_CODES:
        return None
    # The count is left to expire, not cleared: a request that read "not held back" a moment
    # ago would otherwise start a fresh count and have its code checked. It lapses (15 minutes
    # after its first try) before the hold does (15 minutes after the sixth).
    until_at = ctx.now + THROTTLE_WINDOW
    ctx.store.compare_and_set(_lock_key(user_id), None, until_at.isoformat(), expires_at=until_at)
    return locked_until(ctx, user_id) or until_at.isoformat()


def _forgive_attempts(ctx: Context, user_id: int) -> None:
    ctx.store.delete(_tries_key(user_id))


def check_code(ctx: Context, user_id: int, answer: str, *, recovery: bool = True) -> str | None:
    """Whether ``answer`` proves the account's second factor now: ``"totp"`` for a code of the
    app, ``"recovery"`` for a recovery code (spent by this), ``None`` for neither (wrong,
    already used, or older than one used). The caller reserved the attempt first."""
    token = ctx.store.get(_secret_key(user_id))
    if token is None:
        return None
    secret = _decrypt(ctx, token)
    code = "".join(answer.split())
    step = _matching_step(secret, code, ctx.now)
    if step is not None:
        if _claim_step(ctx, user_id, step):
            _forgive_attempts(ctx, user_id)
            return "totp"
        return None
    if recovery and _use_recovery_code(ctx, user_id, answer):
        _forgive_attempts(ctx, user_id)
        return "recovery"
    return None


def confirm_enrolment(ctx: Context, user: UserInfo, answer: str) -> list[str] | None:
    """Activate the pending secret if ``answer`` is its current code: the recovery codes
    (shown once), or ``None`` for a wrong code. :class:`EnrolmentMissing` if none is pending."""
    token = ctx.store.get(_pending_key(user.id))
    if token is None:
        raise EnrolmentMissing()
    step = _matching_step(_decrypt(ctx, token), "".join(answer.split()), ctx.now)
    if step is None:
        return None
    # The confirming code is spent like any other; a new secret starts a new count of steps.
    ctx.store.delete(_last_step_key(user.id))
    if not _claim_step(ctx, user.id, step):
        return None
    ctx.store.set(_secret_key(user.id), token)
    ctx.store.delete(_pending_key(user.id))
    _forgive_attempts(ctx, user.id)
    ctx.store.delete(_lock_key(user.id))
    ctx.store.set(
        email_key(ctx, user.email), {"id": user.id, "email": user.email, "name": user.name}
    )
    if user.role not in ("client", "support"):
        _update_people(ctx, user.id, {"email": user.email, "name": user.name, "role": user.role})
    return new_recovery_codes(ctx, user.id)


def _update_people(ctx: Context, user_id: int, entry: dict[str, str] | None) -> None:
    for _ in range(CAS_ATTEMPTS):
        people = ctx.store.get(PEOPLE_KEY)
        changed = dict(people or {})
        if entry is None:
            changed.pop(str(user_id), None)
        else:
            changed[str(user_id)] = entry
        if ctx.store.compare_and_set(PEOPLE_KEY, people, changed):
            return
    raise RuntimeError("the list of enrolled staff kept changing; try again")


def enrolled_staff(ctx: Context) -> dict[int, dict[str, str]]:
    return {int(uid): entry for uid, entry in (ctx.store.get(PEOPLE_KEY) or {}).items()}


def reset(ctx: Context, user_id: int, email: str | None) -> bool:
    """Forget ``user_id``'s authenticator entirely (their next login enrols afresh, or goes
    without a code if their role does not need one). ``True`` if they had one."""
    had = ctx.store.delete(_secret_key(user_id))
    for key in (_pending_key, _last_step_key, _recovery_key, _tries_key, _lock_key):
        ctx.store.delete(key(user_id))
    if email is not None:
        ctx.store.delete(email_key(ctx, email))
    _update_people(ctx, user_id, None)
    return had
