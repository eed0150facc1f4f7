"""The rules a new password is held to, and how they read beside a password field.

Length and the list of common passwords come from NIST SP 800-63B (section 3.1.1.2): a minimum
length, at least 64 characters always allowed, no composition rules forced on anyone, and a
refusal of passwords that are known to be common or that hold words tied to the account. The
character classes are offered because businesses ask for them, and are off unless switched on.
"""

from __future__ import annotations

import functools
import gzip
import re
import unicodedata
from importlib import resources

from flask_babel import gettext

from bookwell.hooks import Context, Refusal

# zxcvbn's list of the 30,000 most common passwords (MIT, see zxcvbn-LICENSE.txt beside it).
COMMON_PASSWORDS_FILE = "common-passwords.txt.gz"
# Parts of a name or an e-mail shorter than this match too many passwords by chance ("al").
SHORTEST_PERSONAL_WORD = 3
NAME_PARTS = re.compile(r"[^\W_]+")


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list, case-folded; read once, on the first password checked."""
    packed = resources.files(__package__).joinpath(COMMON_PASSWORDS_FILE).read_bytes()
    lines = gzip.decompress(packed).decode("utf-8").splitlines()
    return frozenset(comparable(line) for line in lines if line.strip())


def comparable(text: str) -> str:
    """How two spellings of a password or a word are compared: as the same keyboard-independent
    characters (NFKC, as core stores them) in any case."""
    return unicodedata.normalize("NFKC", text).casefold()


def covers(ctx: Context, settings) -> bool:
    """Whether the account whose password it is falls under the policy. A sign-up's account is
    a client's; support accounts are covered whenever the operator switched the plugin on for
    support (their role is none of a business's)."""
    if ctx.tenant is None:
        return True
    role = ctx.actor.role if ctx.actor is not None else "client"
    return role in settings["roles"]


def broken_rules(ctx: Context, settings, password: str) -> list[tuple[str, str]]:
    """Every rule ``password`` breaks, as ``(rule, message)`` pairs, in the order of
    :func:`described_rules`."""
    broken: list[tuple[str, str]] = []
    typed = unicodedata.normalize("NFKC", password)
    if len(typed) < settings["min_length"]:
        broken.append(
            (
                "min_length",
                gettext("Use at least %(count)s characters.", count=settings["min_length"]),
            )
        )
    classes = (
        ("require_upper", str.isupper, gettext("Use at least one capital letter.")),
        ("require_lower", str.islower, gettext("Use at least one lower-case letter.")),
        ("require_digit", str.isdigit, gettext("Use at least one digit.")),
        ("require_symbol", _is_symbol, gettext("Use at least one symbol, such as ! or #.")),
    )
    for rule, has, message in classes:
        if settings[rule] and not any(has(character) for character in typed):
            broken.append((rule, message))
    folded = comparable(password)
    if settings["refuse_common"] and folded in common_passwords():
        broken.append(
            ("refuse_common", gettext("It is one of the most common passwords: choose another."))
        )
    broken.extend(_personal_words(ctx, folded))
    return broken


def _is_symbol(character: str) -> bool:
    return not character.isalnum() and not character.isspace()


def _personal_words(ctx: Context, folded: str) -> list[tuple[str, str]]:
    """What ties the password to the account or the business: anyone who knows whose account
    it is would try those first."""
    found: list[tuple[str, str]] = []
    actor = ctx.actor
    if actor is not None:
        local = comparable(actor.email.partition("@")[0])
        if len(local) >= SHORTEST_PERSONAL_WORD and local in folded:
            found.append(("email", gettext("Do not use your e-mail address in it.")))
        parts = NAME_PARTS.findall(comparable(actor.name or ""))
        if any(len(part) >= SHORTEST_PERSONAL_WORD and part in folded for part in parts):
            found.append(("name", gettext("Do not use your name in it.")))
    if ctx.tenant is not None and _holds_business_name(ctx.tenant.name, folded):
        business = ctx.tenant.name
        found.append(
            (
                "business_name",
                gettext("Do not use the business's name (%(business)s) in it.", business=business),
            )
        )
    return found


def _holds_business_name(name: str, folded: str) -> bool:
    """The name as written, or run together ("Chez Marie" as "chezmarie"), whatever stands
    between its words in the password ("chez_marie", "CHEZ-MARIE")."""
    written = comparable(name).strip()
    joined = "".join(NAME_PARTS.findall(written))
    squeezed = "".join(NAME_PARTS.findall(folded))
    return any(
        len(form) >= SHORTEST_PERSONAL_WORD and form in password
        for form, password in ((written, folded), (joined, folded), (joined, squeezed))
    )


def refusal(broken: list[tuple[str, str]]) -> Refusal:
    """One refusal that lists every rule broken, so the person fixes everything at once."""
    messages = [message for _rule, message in broken]
    return Refusal(
        gettext("This password is not accepted: %(reasons)s", reasons=" ".join(messages)),
        code="password_rejected",
        status=422,
        field="password",
        details={"broken": [rule for rule, _message in broken], "messages": messages},
    )


def described_rules(ctx: Context, settings) -> list[str]:
    """The rules in words, for the person to read before typing (``password_rules``)."""
    rules = [
        gettext(
            "At least %(count)s characters; long passphrases are welcome (up to "
            "64 characters and more), spaces included.",
            count=settings["min_length"],
        )
    ]
    wanted = [
        label
        for rule, label in (
            ("require_upper", gettext("a capital letter")),
            ("require_lower", gettext("a lower-case letter")),
            ("require_digit", gettext("a digit")),
            ("require_symbol", gettext("a symbol")),
        )
        if settings[rule]
    ]
    if wanted:
        rules.append(gettext("At least %(items)s.", items=_listed(wanted)))
    if settings["refuse_common"]:
        rules.append(gettext("Not one of the 30,000 most common passwords."))
    personal = [gettext("your e-mail address"), gettext("your name")]
    if ctx.tenant is not None:
        personal.append(gettext("the business's name"))
    rules.append(gettext("Without %(items)s in it.", items=_listed(personal, either=True)))
    return rules


def _listed(items: list[str], either: bool = False) -> str:
    """``a, b and c`` (or ``a, b or c``), the last joined as the language joins it."""
    if len(items) == 1:
        return items[0]
    first, last = ", ".join(items[:-1]), items[-1]
    if either:
        return gettext("%(first)s or %(last)s", first=first, last=last)
    return gettext("%(first)s and %(last)s", first=first, last=last)
