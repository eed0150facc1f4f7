"""Refuses bookings on the weekdays a business is closed. Installed like any PyPI plugin."""

from zoneinfo import ZoneInfo

from bookwell.hooks import Manifest, Refusal, Setting, hookimpl

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

MANIFEST = Manifest(
    name="closed_days",
    title="Closed days",
    description="Refuse bookings on the weekdays the business is closed.",
    version="0.1.0",
    category="scheduling",
    author="Bookwell tests",
    settings=(
        Setting(
            key="weekdays",
            type="list",
            default=["sunday"],
            label="Closed on",
            help="Weekday names, e.g. saturday, sunday.",
            max=7,
        ),
    ),
)


@hookimpl
def before_confirm(ctx, settings):
    local = ctx.booking.start.astimezone(ZoneInfo(ctx.tenant.timezone))
    if WEEKDAYS[local.weekday()] in [day.lower() for day in settings["weekdays"]]:
        return Refusal(
            f"We are closed on {WEEKDAYS[local.weekday()].title()}s.",
            code="closed_day",
            field="start",
        )
    return None
