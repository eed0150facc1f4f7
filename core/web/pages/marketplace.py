"""The marketplace at ``/admin/<tenant>/marketplace``: every installed plugin as a card, with a
switch and a settings form built from its manifest.

Every staff role sees it (``plugins.read``); only the owner changes anything (``plugins.manage``),
through the same rules and audit as the CLI and the API (:mod:`bookwell.core.pluginhost.changes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from flask import Blueprint, Flask, current_app, flash, redirect, request, url_for
from flask_babel import gettext, lazy_gettext
from flask_wtf import FlaskForm
from wtforms import HiddenField
from wtforms.validators import AnyOf, DataRequired, Length

from bookwell.core.access.permissions import allowed
from bookwell.core.foundation import clock
from bookwell.core.pluginhost import changes as plugin_changes
from bookwell.core.pluginhost import rules as plugin_rules
from bookwell.core.pluginhost import settings as plugin_settings
from bookwell.core.pluginhost.host import host_of
from bookwell.core.storage import db
from bookwell.core.storage.models import Tenant, User
from bookwell.core.web.forms import SingleLine
from bookwell.core.web.pages.admin import page, require_page
from bookwell.core.web.ratelimits import rate_limited
from bookwell.hooks import Setting

marketplace_pages = Blueprint("marketplace", __name__, url_prefix="/admin/<slug>/marketplace")
FIELD_PREFIX = "setting-"


class PluginForm(FlaskForm):
    plugin = HiddenField(validators=[SingleLine(), DataRequired(), Length(max=100)])


class SwitchForm(PluginForm):
    enabled = HiddenField(validators=[SingleLine(), AnyOf(["on", "off"])])


@dataclass
class SettingField:
    """One setting as the form shows it: ``value`` is what the input holds (the user's own
    input after a refusal), ``error`` its message."""

    setting: Setting
    value: Any
    error: str | None = None

    @property
    def name(self) -> str:
        return FIELD_PREFIX + self.setting.key


# The categories the built-in plugins use, named in the page's language; a plugin's own
# category is shown as it spells it.
CATEGORY_NAMES = {
    "clients": lazy_gettext("Clients"),
    "notifications": lazy_gettext("Notifications"),
    "other": lazy_gettext("Other"),
    "payments": lazy_gettext("Payments"),
    "privacy": lazy_gettext("Privacy"),
    "scheduling": lazy_gettext("Scheduling"),
    "security": lazy_gettext("Security"),
}


@marketplace_pages.app_template_filter("category_name")
def category_name(category: object) -> str:
    return str(CATEGORY_NAMES.get(str(category).lower(), str(category).capitalize()))


@dataclass
class Card:
    entry: dict[str, Any]
    fields: list[SettingField]
    errors: list[str] = field(default_factory=list)

    @property
    def category(self) -> str:
        # Plugins spell categories as they like ("Security", "security"): one group for both.
        return (self.entry["category"] or "other").lower()

    @property
    def source(self) -> str:
        source = self.entry["source"]
        return (
            gettext("Built-in")
            if source == "built-in"
            else gettext("From %(source)s", source=source)
        )


def _shown(setting: Setting, value: Any) -> Any:
    if setting.type == "list" and setting.choices:
        return list(value or [])  # the boxes to tick
    if setting.type == "list":
        return "\n".join(str(item) for item in value or [])
    return value


def _cards(
    tenant: Tenant,
    focus: str | None = None,
    typed: Mapping[str, Any] | None = None,
    problems: Mapping[str, str] | None = None,
    refusal: str | None = None,
) -> list[tuple[str, list[Card]]]:
    """Every plugin's card, grouped by category; ``focus``'s card shows the user's ``typed``
    input with ``problems`` per field, or the ``refusal`` of its change."""
    host = host_of()
    listing = plugin_changes.listing(host, db.session(), tenant.id, clock.now())
    cards = []
    for entry in listing:
        manifest = host.installed[entry["name"]].manifest
        mine = entry["name"] == focus
        fields = [
            SettingField(
                setting,
                typed[setting.key]
                if mine and typed is not None
                else _shown(setting, entry["settings"][setting.key]),
                (problems or {}).get(setting.key) if mine else None,
            )
            for setting in (manifest.settings if manifest else ())
        ]
        cards.append(Card(entry, fields, [refusal] if mine and refusal else []))
    cards.sort(key=lambda card: (card.category, card.entry["title"].lower()))
    return [
        (category, list(group))
        for category, group in groupby(cards, key=lambda card: card.category)
    ]


def _page(tenant: Tenant, user: User, status: int = 200, **focus: Any):
    groups = _cards(tenant, **focus)
    # The refused change's problems, for the layout's error summary: (the input's id, its
    # label, the message); a refusal of the whole change has no field.
    refused = [
        (setting_field.name, setting_field.setting.label, setting_field.error)
        for _, cards in groups
        for card in cards
        for setting_field in card.fields
        if setting_field.error
    ] + [("", "", message) for _, cards in groups for card in cards for message in card.errors]
    return page(
        "admin/marketplace.html",
        tenant,
        user,
        status,
        groups=groups,
        extra_problems=refused,
        manage=allowed(user.role, "plugins.manage"),
        titles={name: plugin_rules.title_of(host_of(), name) for name in host_of().installed},
        csrf=FlaskForm(formdata=None),
    )


@marketplace_pages.get("", endpoint="cards")
def marketplace(slug: str):
    tenant, user = require_page(slug, "plugins.read", "plugins")
    return _page(tenant, user)


def _known(form: PluginForm) -> str | None:
    if not form.validate_on_submit() or form.plugin.data not in host_of().installed:
        return None
    return form.plugin.data


def _switched_on_message(title: str, done: plugin_changes.Enabled) -> str:
    host = host_of()
    message = (
        gettext("%(plugin)s is on.", plugin=title)
        if done.old is None
        else gettext("Settings saved for %(plugin)s.", plugin=title)
    )
    if done.also_enabled:
        names = ", ".join(plugin_rules.title_of(host, name) for name in done.also_enabled)
        message += " " + gettext(
            "Also switched on, as %(plugin)s requires: %(plugins)s.", plugin=title, plugins=names
        )
    if done.raised:
        names = ", ".join(plugin_rules.title_of(host, name) for name in done.raised)
        message += " " + gettext(
            "Settings raised to what %(plugin)s needs: %(plugins)s.", plugin=title, plugins=names
        )
    return message


def _enable(tenant: Tenant, user: User, name: str, values: Mapping[str, Any]):
    done = plugin_changes.enable(
        current_app._get_current_object(),
        tenant.id,
        name,
        values,
        clock.now(),
        actor=user.audit_label,
        ip=request.remote_addr,
    )
    flash(_switched_on_message(plugin_rules.title_of(host_of(), name), done))


def _status(refused: plugin_rules.RuleBroken) -> int:
    # A plugin whose own check of its settings failed is a 503, as on the API.
    return 503 if isinstance(refused, plugin_rules.SettingsCheckFailed) else 409


@marketplace_pages.post("/switch")
@rate_limited("write")
def switch(slug: str):
    tenant, user = require_page(slug, "plugins.manage", "plugins")
    form = SwitchForm()
    name = _known(form)
    if name is None:
        return _page(tenant, user, 422)
    title = plugin_rules.title_of(host_of(), name)
    try:
        if form.enabled.data == "on":
            _enable(tenant, user, name, {})
        else:
            plugin_changes.disable(
                current_app._get_current_object(),
                tenant.id,
                name,
                clock.now(),
                actor=user.audit_label,
                ip=request.remote_addr,
            )
            flash(gettext("%(plugin)s is off.", plugin=title))
    except plugin_rules.RuleBroken as refused:
        return _page(tenant, user, _status(refused), focus=name, refusal=refused.message)
    except plugin_settings.InvalidSettings as invalid:
        return _page(tenant, user, 422, focus=name, problems=invalid.fields)
    return redirect(url_for(".cards", slug=slug) + f"#plugin-{name}")


def _typed(settings: tuple[Setting, ...]) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """The form's input for each setting: as typed (to show again), as values, and the inputs
    that are not even of the setting's type."""
    typed: dict[str, Any] = {}
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for setting in settings:
        raw = request.form.get(FIELD_PREFIX + setting.key, "")
        if setting.type == "bool":
            typed[setting.key] = values[setting.key] = bool(raw)
            continue
        if setting.type == "list" and setting.choices:
            # One checkbox per choice: no box ticked is an empty list.
            ticked = request.form.getlist(FIELD_PREFIX + setting.key)
            typed[setting.key] = ticked
            values[setting.key] = [item.strip() for item in ticked if item.strip()]
            continue
        typed[setting.key] = raw
        if setting.type == "int":
            try:
                values[setting.key] = int(raw.strip())
            except ValueError:
                problems[setting.key] = gettext(
                    "%(setting)s must be a whole number", setting=setting.label
                )
        elif setting.type == "list":
            lines = raw.replace(",", "\n").splitlines()
            values[setting.key] = [item.strip() for item in lines if item.strip()]
        elif setting.type == "text":
            values[setting.key] = raw.replace("\r\n", "\n")
        else:
            values[setting.key] = raw.strip() if setting.type in ("str", "email", "url") else raw
    return typed, values, problems


@marketplace_pages.post("/settings")
@rate_limited("write")
def save_settings(slug: str):
    tenant, user = require_page(slug, "plugins.manage", "plugins")
    form = PluginForm()
    name = _known(form)
    manifest = host_of().installed[name].manifest if name else None
    if manifest is None:
        return _page(tenant, user, 422)
    typed, values, problems = _typed(manifest.settings)
    if problems:
        return _page(tenant, user, 422, focus=name, typed=typed, problems=problems)
    try:
        _enable(tenant, user, name, values)
    except plugin_settings.InvalidSettings as invalid:
        return _page(tenant, user, 422, focus=name, typed=typed, problems=invalid.fields)
    except plugin_rules.RuleBroken as refused:
        return _page(
            tenant, user, _status(refused), focus=name, typed=typed, refusal=refused.message
        )
    return redirect(url_for(".cards", slug=slug) + f"#plugin-{name}")


def init_app(app: Flask) -> None:
    app.register_blueprint(marketplace_pages)
