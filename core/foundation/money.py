"""Prices: stored as integers in the currency's minor unit (cents for EUR, yen for JPY), shown
with Babel in the tenant's currency (ISO 4217)."""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import (
    format_currency,
    get_currency_precision,
    get_currency_symbol,
    list_currencies,
)
from flask import Flask

DEFAULT_CURRENCY = "EUR"
# The pages and e-mails are in English; en_GB writes every currency unambiguously (US$, €, £).
LOCALE = "en_GB"


def check_currency(code: str) -> str:
    """``code`` as a known ISO 4217 currency (upper case), or :class:`ValueError`."""
    normalised = (code or "").strip().upper()
    if normalised not in list_currencies():
        raise ValueError(f"{code!r} is not an ISO 4217 currency code (such as EUR, GBP, USD)")
    return normalised


def format_money(amount: int, currency: str) -> str:
    """``€45.00`` for 4500 EUR, ``¥4,500`` for 4500 JPY: ``amount`` is in minor units."""
    major = Decimal(amount).scaleb(-get_currency_precision(currency))
    shown = format_currency(major, currency, locale=LOCALE)
    symbol = get_currency_symbol(currency, locale=LOCALE)
    if symbol[-1:].isalpha() and shown.startswith(symbol):
        # CLDR's currency spacing, which Babel leaves out: CHF 45.00, not CHF45.00.
        shown = f"{symbol}\xa0{shown[len(symbol) :]}"
    return shown


def init_app(app: Flask) -> None:
    app.add_template_filter(format_money, "money")
