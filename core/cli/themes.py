"""``bookwell themes list``: the themes installed, built-in or from packages, that a tenant can
pick (``bookwell tenants set SLUG --theme NAME``)."""

from __future__ import annotations

import json

import click

from bookwell.core.web.themes import load_themes


@click.group("themes")
def themes_group() -> None:
    """Themes for the client booking pages."""


@themes_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_themes(as_json: bool) -> None:
    """Every installed theme: its name (what --theme takes), title and where it comes from."""
    found = [
        {"name": theme.name, "title": theme.title, "source": theme.source}
        for theme in sorted(load_themes().values(), key=lambda theme: theme.name)
    ]
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    if not found:
        click.echo("no themes installed: reinstall bookwell (pip install -e .)")
        return
    width = max(len(theme["name"]) for theme in found)
    for theme in found:
        click.echo(f"{theme['name']:<{width}}  {theme['title']}  ({theme['source']})")
