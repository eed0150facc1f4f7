"""Refuses bookings on the business's weekly rest day. Installed like any PyPI plugin; its texts
are translated by its own catalogue (``translations/``), not Bookwell's.

The catalogue, from the distribution's folder (beside ``babel.cfg``)::

    pybabel extract -F babel.cfg -k lazy -k _ --no-location -o messages.pot .
    pybabel init -i messages.pot -d bookwell_rest_day/translations -l fr  (the first time)
    pybabel update -i messages.pot -d bookwell_rest_day/translations -l fr  (after that)
    pybabel compile -d bookwell_rest_day/translations -l fr
"""

from zoneinfo import ZoneInfo

from flask import Blueprint, render_template

from bookwell.hooks import Manifest, Refusal, Setting, hookimpl
from bookwell.hooks.i18n import catalogue
from bookwell.hooks.pages import plugin_context, plugin_settings

texts = catalogue(__name__)
_, lazy = texts.gettext, texts.lazy_gettext

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# The day's name as a person reads it: the setting's value stays the English key.
DAY_NAMES = {
    "monday": lazy("Monday"),
    "tuesday": lazy("Tuesday"),
    "wednesday": lazy("Wednesday"),
    "thursday": lazy("Thursday"),
    "friday": lazy("Friday"),
    "saturday": lazy("Saturday"),
    "sunday": lazy("Sunday"),
}

MANIFEST = Manifest(
    name="rest_day",
    title=lazy("Rest day"),
    description=lazy("No bookings on the weekly rest day of the business."),
    version="0.1.0",
    category="scheduling",
    author="Bookwell tests",
    settings=(
        Setting(
            key="weekday",
            type="choice",
            default="sunday",
            label=lazy("Rest day"),
            help=lazy("The weekday nobody books."),
            choices=WEEKDAYS,
        ),
    ),
)

pages = Blueprint("rest_day", __name__, template_folder="templates")


@pages.get("/book/<slug>/rest_day/")
def notice(slug: str):
    ctx = plugin_context(slug)
    day = DAY_NAMES[plugin_settings(slug)["weekday"]]
    # The template's _() is this catalogue's, handed to it (Bookwell's own is the default).
    return render_template("rest_day/notice.html", tenant=ctx.tenant, day=day, _=_)


@hookimpl
def before_confirm(ctx, settings):
    local = ctx.booking.start.astimezone(ZoneInfo(ctx.tenant.timezone))
    if WEEKDAYS[local.weekday()] == settings["weekday"]:
        return Refusal(
            _("We rest on %(day)s: please choose another day.", day=DAY_NAMES[settings["weekday"]]),
            code="rest_day",
            field="start",
        )
    return None


@hookimpl
def routes():
    return pages
