"""Themes for the client pages, loaded from the ``bookwell.themes`` entry points.

A theme is a package with a ``templates/`` and a ``static/`` folder. The built-in ``default``
theme loads through its entry point exactly as a third-party theme does. A tenant picks one
(``Tenant.theme``); an unknown name falls back to ``default``. Templates are looked up in the
tenant's theme first, then in the default theme, then in the app's own templates, so a theme
overrides only what it wants to. Static files are served at ``/themes/<theme>/static/<path>``.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, abort, current_app, send_from_directory, url_for
from jinja2 import ChoiceLoader, Environment, FileSystemLoader
from werkzeug.security import safe_join

log = logging.getLogger("bookwell.themes")
ENTRY_POINT_GROUP = "bookwell.themes"
EXTENSION = "bookwell.themes"
DEFAULT = "default"


BUILT_IN = "built-in"
WHITE = "#ffffff"
HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class Theme:
    name: str
    templates: Path
    static: Path
    # What an owner reads when choosing: the package's ``TITLE``, else its name capitalised.
    title: str = ""
    # Where it comes from: ``built-in``, or the distribution (PyPI package) that installed it.
    source: str = BUILT_IN
    # The package's ``BACKGROUND`` (``#rrggbb``): the page colour links are drawn on, which a
    # business's accent colour is checked against (core/booking/branding.py).
    background: str = WHITE


def load_themes() -> dict[str, Theme]:
    """Every installed theme whose package imports and has a ``templates/`` folder."""
    found: dict[str, Theme] = {}
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            module = entry_point.load()
            folder = Path(module.__file__).resolve().parent
        except Exception:  # a broken theme is left out and logged, never fatal
            log.warning("theme %s failed to load", entry_point.name, exc_info=True)
            continue
        if not (folder / "templates").is_dir():
            log.warning("theme %s has no templates folder; left out", entry_point.name)
            continue
        title = getattr(module, "TITLE", None)
        if not isinstance(title, str) or not title.strip():
            title = entry_point.name.replace("-", " ").replace("_", " ").capitalize()
        background = getattr(module, "BACKGROUND", None)
        if not isinstance(background, str) or not HEX_COLOUR.match(background):
            background = WHITE
        found[entry_point.name] = Theme(
            entry_point.name,
            folder / "templates",
            folder / "static",
            title=title.strip(),
            source=_source(entry_point),
            background=background.lower(),
        )
    return found


def _source(entry_point: importlib.metadata.EntryPoint) -> str:
    distribution = entry_point.dist
    name = distribution.metadata["Name"] if distribution is not None else None
    if name is None:
        return "unknown"
    return BUILT_IN if name.lower() == "bookwell" else name


themes_blueprint = Blueprint("themes", __name__)


@themes_blueprint.get("/themes/<theme>/static/<path:filename>")
def static(theme: str, filename: str):
    installed = current_app.extensions[EXTENSION]["themes"]
    chosen = installed.get(theme)
    if chosen is None:
        abort(404)
    # safe_join and send_from_directory refuse ``..`` and absolute paths (404).
    found = safe_join(str(chosen.static), filename)
    if (found is None or not os.path.isfile(found)) and DEFAULT in installed:
        chosen = installed[DEFAULT]  # a theme overrides only the files it wants to
    return send_from_directory(chosen.static, filename, max_age=3600)


def init_app(app: Flask) -> None:
    themes = load_themes()
    if DEFAULT not in themes:
        log.error("the default theme is not installed: reinstall bookwell (pip install -e .)")
    app.extensions[EXTENSION] = {"themes": themes, "environments": {}}
    app.register_blueprint(themes_blueprint)


def theme_for(app: Flask, name: str | None) -> Theme:
    themes: dict[str, Theme] = app.extensions[EXTENSION]["themes"]
    chosen = themes.get(name or DEFAULT) or themes.get(DEFAULT)
    if chosen is None:
        raise RuntimeError("no default theme installed")
    return chosen


def environment(app: Flask, theme: Theme) -> Environment:
    """A Jinja environment derived from the app's: the theme's templates first."""
    cache = app.extensions[EXTENSION]["environments"]
    env = cache.get(theme.name)
    if env is None:
        loaders = [FileSystemLoader(theme.templates)]
        fallback = app.extensions[EXTENSION]["themes"].get(DEFAULT)
        if fallback is not None and fallback.name != theme.name:
            loaders.append(FileSystemLoader(fallback.templates))
        loaders.append(app.jinja_env.loader)
        env = app.jinja_env.overlay(loader=ChoiceLoader(loaders))
        cache[theme.name] = env
    return env


def render(theme_name: str | None, template: str, **context: Any) -> str:
    """Render ``template`` from a theme, with the same context Flask's ``render_template`` gives."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    theme = theme_for(app, theme_name)
    values: dict[str, Any] = {}
    app.update_template_context(values)
    values.update(context)
    values["theme"] = theme.name
    values["theme_static"] = lambda filename: url_for(
        "themes.static", theme=theme.name, filename=filename
    )
    return environment(app, theme).get_template(template).render(values)
