"""An e-mail to an account at each login from a device it was not seen on before.

What a device is: the browser family and the operating system the user agent names, and the
network the login came from (its IPv4 /24, or IPv6 /48). Only a keyed digest of the three is
kept (``ctx.secrets.digest``), so the store holds no address and no user agent. A browser's
update keeps its family and an address that moves within a home or office network keeps its
network, so the same device is not announced again and again; a new browser, computer or
network is. (A long-lived cookie would tell devices apart better, but a hook cannot set one,
and a login through the API has none to show.)

The first login the plugin sees of an account is its baseline and announced to nobody: there
is nothing yet to compare it with, and every account would be told of its first login after
HIPAA mode was switched on. Every device after it is announced. An account keeps its last
``REMEMBERED`` devices; one not seen for a while is forgotten, and announced again if it comes
back."""

from __future__ import annotations

import ipaddress
import re

from flask_babel import force_locale, gettext

from bookwell.hooks import Context

from .minimum import local_time

REMEMBERED = 20
BROWSERS = (
    ("Edge", re.compile(r"\bEdg(?:e|A|iOS)?/")),
    ("Opera", re.compile(r"\b(?:OPR|Opera)/")),
    ("Firefox", re.compile(r"\b(?:Firefox|FxiOS)/")),
    ("Chrome", re.compile(r"\b(?:Chrome|Chromium|CriOS)/")),
    ("Safari", re.compile(r"\bSafari/")),
)
SYSTEMS = (
    ("Android", re.compile(r"\bAndroid\b")),
    ("iOS", re.compile(r"\b(?:iPhone|iPad|iPod)\b")),
    ("Windows", re.compile(r"\bWindows\b")),
    ("macOS", re.compile(r"\bMac OS X\b|\bMacintosh\b")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("Linux", re.compile(r"\bLinux\b")),
)


def describe(user_agent: str | None, ip: str | None) -> tuple[str, str, str]:
    """``(browser family, operating system, network)`` of a login, each "unknown" when it
    cannot be told."""
    agent = user_agent or ""
    browser = next((name for name, pattern in BROWSERS if pattern.search(agent)), None)
    if browser is None:
        # A program (an API client) names itself first: "python-requests/2.32".
        browser = agent.split("/", 1)[0].strip()[:40] or "unknown"
    system = next((name for name, pattern in SYSTEMS if pattern.search(agent)), "unknown")
    return browser, system, network_of(ip)


def network_of(ip: str | None) -> str:
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return "unknown"
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def alert_if_new(ctx: Context) -> None:
    user = ctx.actor
    # Support logins have no business, and so no business's mail to send in the name of.
    if user is None or ctx.tenant is None or ctx.data is None or ctx.request is None:
        return
    browser, system, network = describe(ctx.request.user_agent, ctx.request.ip)
    device = ctx.secrets.digest(f"device:{user.id}:{browser}:{system}:{network}")
    key = f"devices:{user.id}"
    known = ctx.store.get(key) or []
    first_ever = not known
    if device in known:
        known.remove(device)
    else:
        _remember(ctx, key, known, device)
        if not first_ever:
            _tell(ctx, browser, system, network)
        return
    known.append(device)  # most recently seen last
    ctx.store.set(key, known[-REMEMBERED:])


def _remember(ctx: Context, key: str, known: list[str], device: str) -> None:
    ctx.store.set(key, [*known, device][-REMEMBERED:])
    ctx.audit(
        "device.new",
        f"user:{ctx.actor.id}",
        {"announced": bool(known)},
    )


def _tell(ctx: Context, browser: str, system: str, network: str) -> None:
    user = ctx.actor
    language = ctx.tenant.language
    when = local_time(ctx.now, ctx.tenant.timezone, language)
    # A plugin's mail speaks the business's language, as core's notices do.
    with force_locale(language):
        subject = gettext("New sign-in to your %(business)s account", business=ctx.tenant.name)
        text = gettext(
            "Hello %(name)s,\n\n"
            "Your account was just signed in to from a device it was not used on before:\n\n"
            "When:     %(when)s\n"
            "Browser:  %(browser)s on %(system)s\n"
            "Network:  %(network)s\n\n"
            "If this was you, there is nothing to do. If it was not, change your password at "
            "once and tell the business's owner: someone may know your password and your "
            "second factor.",
            name=user.name or user.email,
            when=when,
            browser=browser,
            system=system,
            network=network,
        )
    ctx.data.send_mail(to=user.email, subject=subject, text=text, kind="hipaa.new_device")
