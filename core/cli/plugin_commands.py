"""Plugins' own commands for operators: ``bookwell <plugin> <command>``.

Each installed, working plugin's ``commands`` hook gives click commands, which become a group
named after the plugin. They are found through the instance's app (the plugins it loads, less
those it blocks), so that listing them and running them see the same plugins; core's commands
never wait for that. A plugin whose hook fails or answers something other than click commands,
or whose name is a core command's, is logged and has no group: ``bookwell --help`` and every
other command go on working. A command runs inside the app's context, bound to its plugin, so
``bookwell.hooks.pages.plugin_context(slug)`` gives it a business's context.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

import click
from flask import Flask

from bookwell.core.cli.instance import Context, require_schema
from bookwell.core.foundation import config
from bookwell.core.pluginhost.host import host_of
from bookwell.core.web.plugin_pages import run_as_command_of

log = logging.getLogger("bookwell.plugins")
EXTENSION = "bookwell.plugin_commands"


class BookwellGroup(click.Group):
    """The ``bookwell`` group: core's commands, then one group per plugin that has commands."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        core = super().list_commands(ctx)
        instance = _instance_of(ctx)
        if not _set_up(instance):
            # No database to run them on yet; and help must not make an app (and a folder).
            return core
        try:
            app = instance.app
        except click.ClickException as error:  # help must still show core's commands
            log.warning("plugins' commands are not listed: %s", error.message)
            return core
        return core + sorted(plugin_groups(app, set(core)))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        app = _instance_of(ctx).app
        return plugin_group(app, set(super().list_commands(ctx)), cmd_name)


class PluginGroup(click.Group):
    """One plugin's commands; each runs inside the app's context, bound to the plugin."""

    def __init__(self, plugin: str, commands: list[click.Command], **attributes: Any) -> None:
        super().__init__(name=plugin, commands=commands, **attributes)
        self.plugin = plugin

    def invoke(self, ctx: click.Context) -> Any:
        app = require_schema(_instance_of(ctx).app)
        with app.app_context():
            run_as_command_of(self.plugin)
            try:
                return super().invoke(ctx)
            except (click.ClickException, click.exceptions.Exit, click.Abort):
                raise
            except Exception as error:  # one line for the operator; the trace goes to the log
                log.debug("plugin %s: a command failed", self.plugin, exc_info=True)
                raise click.ClickException(f"plugin {self.plugin}: {error}") from error


def plugin_groups(app: Flask, reserved: set[str]) -> dict[str, PluginGroup]:
    """Each working plugin's group of commands, by plugin name."""
    host = host_of(app)
    names = sorted(host.pm.get_name(hook.plugin) for hook in host.pm.hook.commands.get_hookimpls())
    groups = {name: plugin_group(app, reserved, name) for name in names}
    return {name: group for name, group in groups.items() if group is not None}


def plugin_group(app: Flask, reserved: set[str], plugin: str) -> PluginGroup | None:
    """Plugin ``plugin``'s group of commands, if it has some and they are sound; its hook is
    asked once per app (and only this plugin's: running one plugin's command does not report
    every other plugin's problems)."""
    found = app.extensions.setdefault(EXTENSION, {})
    if plugin not in found:
        found[plugin] = _group_of(app, reserved, plugin)
    return found[plugin]


def _group_of(app: Flask, reserved: set[str], plugin: str) -> PluginGroup | None:
    host = host_of(app)
    installed = host.installed.get(plugin)
    module = host.pm.get_plugin(plugin)
    if module is None or installed is None or installed.manifest is None:
        return None
    if installed.status != "ok":
        return None  # broken: `bookwell plugins list` says why
    hook = next(
        (each for each in host.pm.hook.commands.get_hookimpls() if each.plugin is module), None
    )
    if hook is None:
        return None
    if plugin in reserved:
        log.warning("plugin %s: its commands are left out: a core command has its name", plugin)
        return None
    try:
        commands = _commands_of(hook.function())
    except Exception as error:
        log.debug("plugin %s: its commands hook failed", plugin, exc_info=True)
        log.warning("plugin %s: its commands are left out: %s", plugin, error)
        return None
    if not commands:
        return None
    return PluginGroup(
        plugin,
        commands,
        help=installed.manifest.description,
        short_help=installed.manifest.title,
    )


def _commands_of(answer: Any) -> list[click.Command]:
    if answer is None:
        return []
    if isinstance(answer, click.Command) or not isinstance(answer, Iterable):
        raise TypeError(f"commands returned {type(answer).__name__}, not a list of click commands")
    commands = list(answer)
    names = set()
    for command in commands:
        if not isinstance(command, click.Command) or not command.name:
            raise TypeError(f"commands returned {command!r}, not a named click command")
        if command.name in names:
            raise TypeError(f"commands returned two commands named {command.name!r}")
        names.add(command.name)
    return commands


def _set_up(instance: Context) -> bool:
    """Whether the instance has a database to use: its config file, or one named outside it."""
    folder = config.resolve_instance_path(instance.instance)
    return (folder / config.CONFIG_FILE).exists() or bool(os.environ.get("DATABASE_URL"))


def _instance_of(ctx: click.Context) -> Context:
    """The instance the ``bookwell`` group works on, made here if the group's own callback has
    not run yet (click finds a subcommand, or shows help, before it runs the group)."""
    root = ctx.find_root()
    if not isinstance(root.obj, Context):
        root.obj = Context(root.params.get("instance"))
    return root.obj
