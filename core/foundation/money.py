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

from bookwell.core.foundation import locales

DEFAULT_CURRENCY = "EUR"
# English prices are written as en_GB writes them, every currency unambiguous (US$, €, £).
LOCALE = locales.formatting_locale(locales.ENGLISH)


def check_currency(code: str) -> str:
    """``code`` as a known ISO 4217 currency (upper case), or :class:`ValueError`."""
    normalised = (code or "").strip().upper()
    if normalised not in list_currencies():
        raise ValueError(f"{code!r} is not an ISO 4217 currency code (such as EUR, GBP, USD)")
    return normalised


def format_money(amount: int, currency: str, language: str | None = None) -> str:
    """``€45.00`` for 4500 EUR, ``¥4,500`` for 4500 JPY, ``45,00 €`` in French: ``amount`` is in
    minor units; ``language`` defaults to the request's (or the mail's)."""
    locale = locales.formatting_locale(language or locales.current_language())
    major = Decimal(amount).scaleb(-get_currency_precision(currency))
    shown = format_currency(major, currency, locale=locale)
    symbol = get_currency_symbol(currency, locale=locale)
    if symbol[-1:].isalpha() and shown.startswith(symbol):
        # CLDR's currency spacing, which Babel leaves out: CHF 45.00, not CHF45.00.
        shown = f"{symbol}\xa0{shown[len(symbol) :]}"
    return shown


def init_app(app: Flask) -> None:
    app.add_template_filter(format_money, "money")
