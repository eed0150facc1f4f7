"""Failed logins, counted per account and per IP address, and the locks they lead to.

Counts live in the plugin's store (``ctx.store``), so every worker process shares them: the
business's store, or for platform support's logins the instance's (a context without a store
locks nothing).

**Reserve, then settle.** A guess is reserved before its password is checked
(``before_password_check``): ``increment`` is atomic, so of twenty wrong passwords sent at once
only ``max_attempts`` are ever checked and the others answer ``locked``. When the login ends,
the reservation is settled: a failure that counts (``invalid_credentials``, ``otp_invalid``)
keeps it, anything else (a success, ``otp_required``, an unconfirmed address, another plugin's
refusal) gives it back. A failure that leaves the count at ``max_attempts`` locks the account at
once. Each reservation also leaves a short-lived marker keyed by the account, the address and
the challenge answers the attempt carried; settling consumes it, which is how an event knows
whether its attempt was reserved. A further step of the pages (a one-time code typed on a page
of its own) never passes ``before_password_check``: ``before_login`` reserves it instead, so a
wrong code counts at every door.

**Per account** means per address as typed (trimmed, case-folded), kept under a hash of it: an
unknown address locks exactly like a real one, so ``locked`` tells nobody who has an account.
For the same reason the lockout covers every account whatever ``roles`` says (``roles`` selects
whom the password rules cover). The lock lasts ``lockout_minutes``, doubled for each earlier
lock of the same account within a day of its end, and never more than 24 hours. A success
clears the count; an owner's or operator's unlock clears the count, the lock and the doubling.

**Per IP address**, against credential stuffing (one address trying a few passwords on many
accounts): at most ``max_attempts * 10`` failed or pending guesses per address per clock hour
(UTC), across every account of the business; past that, every login from the address answers
``locked`` until the hour ends. That answer names the hour's end and locks no account.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask_babel import force_locale, gettext

from bookwell.hooks import Context, PluginStore, Refusal

log = logging.getLogger(__name__)

COUNTED_FAILURES = frozenset({"invalid_credentials", "otp_invalid"})
LOCKED = "locked"
# Failures are forgotten this long after the first of them (sooner on a success or an unlock).
FAILURE_MEMORY = timedelta(hours=24)
# Earlier locks count towards the doubling until this long after the last one ended.
LOCKOUT_MEMORY = timedelta(hours=24)
LONGEST_LOCK = timedelta(hours=24)
# Guesses per IP address and clock hour, per allowed attempt on one account.
IP_ATTEMPTS_PER_ACCOUNT_ATTEMPT = 10
# A login takes a few seconds at most: a marker outlives the request that left it.
MARKER_LIFETIME = timedelta(minutes=5)
# The owner's page lists the locked accounts from one stored entry (64 KiB at most).
INDEX_KEY = "locked-accounts"
INDEX_LIMIT = 300
INDEX_WRITE_ATTEMPTS = 10


def account_key(email: str) -> str:
    """A fixed-length key for an address, written as a login has it, that does not hold it."""
    return hashlib.sha256(email.strip().casefold().encode()).hexdigest()


def _ip_key(ip: str, now: datetime) -> tuple[str, datetime]:
    hour = now.replace(minute=0, second=0, microsecond=0)
    address = hashlib.sha256(ip.encode()).hexdigest()
    return f"ip:{address}:{hour:%Y%m%d%H}", hour + timedelta(hours=1)


class Attempt:
    """One login attempt's keys in the store."""

    def __init__(self, ctx: Context, settings) -> None:
        assert ctx.store is not None and ctx.login is not None
        self.ctx, self.settings, self.store = ctx, settings, ctx.store
        self.email = ctx.login.email
        self.account = account_key(self.email)
        self.tries = f"tries:{self.account}"
        self.lock = f"lock:{self.account}"
        self.lockouts = f"lockouts:{self.account}"
        ip = ctx.request.ip if ctx.request is not None else None
        self.ip, self.ip_until = _ip_key(ip, ctx.now) if ip else (None, None)
        answers = sorted((ctx.login.answers or {}).items())
        correlation = hashlib.sha256(repr((ip, answers)).encode()).hexdigest()[:32]
        self.marker = f"held:{self.account}:{correlation}"

    @property
    def ip_limit(self) -> int:
        return self.settings["max_attempts"] * IP_ATTEMPTS_PER_ACCOUNT_ATTEMPT

    # --- reserving ------------------------------------------------------------------------

    def reserve(self) -> Refusal | None:
        """Take one guess for this attempt, or the refusal that says it may not have one."""
        locked_until = self.store.get(self.lock)
        if locked_until is not None:
            return locked_refusal(self.ctx, locked_until)
        if self.ip is not None:
            taken = self.store.increment(self.ip, expires_at=self.ip_until)
            if taken > self.ip_limit:
                if taken == self.ip_limit + 1:  # exactly one attempt sees the limit crossed
                    blocked = {"until": self.ip_until, "limit": self.ip_limit}
                    self._audit("ip.blocked", "ip", blocked)
                return locked_refusal(self.ctx, self.ip_until.isoformat())
        taken = self.store.increment(self.tries, expires_at=self.ctx.now + FAILURE_MEMORY)
        if taken > self.settings["max_attempts"]:
            # More guesses than allowed are pending at once: they lock the account as the
            # last allowed failure would have, and none of the extra ones is checked.
            self._give_back(self.ip)
            return locked_refusal(self.ctx, self.lock_now())
        # A failure that finished meanwhile may have locked the account (and reset the count
        # this guess was taken from): a lock always wins.
        locked_until = self.store.get(self.lock)
        if locked_until is not None:
            self._give_back(self.tries)
            self._give_back(self.ip)
            return locked_refusal(self.ctx, locked_until)
        self.store.increment(self.marker, expires_at=self.ctx.now + MARKER_LIFETIME)
        return None

    def reserved(self) -> bool:
        return self.store.get(self.marker, 0) > 0

    # --- settling -------------------------------------------------------------------------

    def settle_failure(self, reason: str) -> None:
        held = self._give_back(self.marker)
        if reason not in COUNTED_FAILURES:
            if held:
                self._give_back(self.tries)
                self._give_back(self.ip)
            return
        if not held:  # a door that reserved nothing: the guess counts now
            self.store.increment(self.tries, expires_at=self.ctx.now + FAILURE_MEMORY)
            if self.ip is not None:
                self.store.increment(self.ip, expires_at=self.ip_until)
        if self.store.get(self.tries, 0) >= self.settings["max_attempts"]:
            self.lock_now()

    def settle_success(self) -> None:
        if self._give_back(self.marker):
            self._give_back(self.ip)  # a success is no failure of the address's
        self.store.delete(self.tries)

    def release(self) -> None:
        """Give back this attempt's guess, if it took one (it is refused before it is used)."""
        if self._give_back(self.marker):
            self._give_back(self.tries)
            self._give_back(self.ip)

    def _give_back(self, key: str | None) -> bool:
        """Take one off ``key``; ``False`` (and nothing taken) when it held nothing, as when a
        lock or an unlock cleared it meanwhile."""
        if key is None:
            return False
        soon = self.ctx.now + MARKER_LIFETIME  # only an absent key takes it
        left = self.store.increment(key, by=-1, expires_at=soon)
        if left < 0:
            self.store.increment(key, by=1, expires_at=soon)
            return False
        return True

    # --- locking --------------------------------------------------------------------------

    def lock_now(self) -> str:
        """Lock the account (once, however many attempts race to) and return until when, as
        ISO 8601."""
        earlier = self.store.get(self.lockouts, 0)
        doubled = timedelta(minutes=self.settings["lockout_minutes"]) * 2 ** min(earlier, 16)
        until = self.ctx.now + min(doubled, LONGEST_LOCK)
        written = until.isoformat()
        if not self.store.compare_and_set(self.lock, None, written, expires_at=until):
            return self.store.get(self.lock, written)
        self.store.set(self.lockouts, earlier + 1, expires_at=until + LOCKOUT_MEMORY)
        self.store.delete(self.tries)
        self._announce(until, earlier + 1)
        return written

    def _announce(self, until: datetime, lockouts: int) -> None:
        """The audit entry, the owner's list and the e-mail to the account's owner."""
        login = self.ctx.login
        self._audit(
            "account.locked",
            f"login:{self.email}",
            {"until": until, "lockouts": lockouts, "user_id": login.user_id},
        )
        if login.user_id is None:  # nobody to tell: an unknown address locks all the same
            return
        if self.ctx.tenant is not None:
            add_to_index(self.store, self.ctx.now, self.account, self.email, until)
        if self.ctx.data is not None:
            shown = _local_time(self.ctx, until)
            # A plugin's mail speaks the business's language, as core's notices do.
            with force_locale(self.ctx.tenant.language):
                subject = gettext("Your account is locked for a while")
                text = gettext(
                    "Too many attempts to log in to your account at %(business)s "
                    "failed, so it is locked until %(until)s. Nobody can log in to it until "
                    "then, even with the right password.\n\n"
                    "If it was you, wait until then, or ask the business to unlock it. If it "
                    "was not you, someone may be guessing your password: once the lock ends, "
                    'choose a new one with "forgotten password".',
                    business=self.ctx.tenant.name,
                    until=shown,
                )
            self.ctx.data.send_mail(
                to=self.email,
                subject=subject,
                text=text,
                kind="password_policy.locked",
                once=f"locked:{self.account}:{until.isoformat()}",
            )

    def _audit(self, action: str, subject: str, details) -> None:
        self.ctx.audit(action, subject, details)


def locked_refusal(ctx: Context, locked_until: str) -> Refusal:
    shown = _local_time(ctx, datetime.fromisoformat(locked_until))
    return Refusal(
        gettext(
            "Too many failed attempts: logging in is locked until %(until)s. Try again then, or "
            "ask the business to unlock your account.",
            until=shown,
        ),
        code=LOCKED,
        status=401,
        details={"locked_until": locked_until},
    )


def _local_time(ctx: Context, when: datetime) -> str:
    zone = ZoneInfo(ctx.tenant.timezone) if ctx.tenant is not None else when.tzinfo
    return when.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


# --- the owner's list of locked accounts, and unlocking ------------------------------------------


def locked_accounts(store: PluginStore, now: datetime) -> list[dict]:
    """The accounts locked now, soonest unlocked first."""
    index = store.get(INDEX_KEY, {})
    live = [
        {"account": account, **entry}
        for account, entry in index.items()
        if datetime.fromisoformat(entry["until"]) > now and store.get(f"lock:{account}")
    ]
    return sorted(live, key=lambda entry: entry["until"])


def add_to_index(store: PluginStore, now: datetime, account: str, email: str, until) -> None:
    def change(index: dict) -> dict:
        index[account] = {"email": email, "until": until.isoformat()}
        return index

    if not _change_index(store, now, change):
        log.warning("password_policy: could not list the lock of %s on the owner's page", email)


def remove_from_index(store: PluginStore, now: datetime, account: str) -> None:
    def change(index: dict) -> dict:
        index.pop(account, None)
        return index

    _change_index(store, now, change)


def _change_index(store: PluginStore, now: datetime, change) -> bool:
    """Apply ``change`` to the list with compare-and-set, dropping locks that have ended; the
    list keeps the ``INDEX_LIMIT`` latest (a lock past that still holds, and still lifts by
    e-mail address with the command)."""
    for _ in range(INDEX_WRITE_ATTEMPTS):
        current = store.get(INDEX_KEY)
        live = {
            account: entry
            for account, entry in (current or {}).items()
            if datetime.fromisoformat(entry["until"]) > now
        }
        changed = change(live)
        if len(changed) > INDEX_LIMIT:
            latest = sorted(changed.items(), key=lambda item: item[1]["until"])[-INDEX_LIMIT:]
            changed = dict(latest)
        if store.compare_and_set(INDEX_KEY, current, changed):
            return True
    return False


def unlock(store: PluginStore, now: datetime, email: str) -> bool:
    """Lift the lock of ``email`` and forget its failures and earlier locks; ``True`` if it
    was locked."""
    account = account_key(email)
    was_locked = store.delete(f"lock:{account}")
    store.delete(f"tries:{account}")
    store.delete(f"lockouts:{account}")
    remove_from_index(store, now, account)
    return was_locked


def unlock_account(store: PluginStore, now: datetime, account: str) -> str | None:
    """Lift the lock listed under ``account`` (the owner's page names locks by key); the
    address it was listed with, or ``None`` when it is no longer locked."""
    index = store.get(INDEX_KEY, {})
    entry = index.get(account)
    if entry is None:
        return None
    return entry["email"] if unlock(store, now, entry["email"]) else None
