"""The one standard for typed text (:mod:`bookwell.core.foundation.text`) as ``click``
callbacks, so an option is refused exactly as the API and the pages refuse the same field, before
the command touches anything: ``@click.option("--name", callback=single_line)``."""

from __future__ import annotations

from typing import Any

import click

from bookwell.core.foundation import text


def single_line(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """A name, an e-mail address, a slug, a key: one line, no control characters."""
    if isinstance(value, str) and not text.is_single_line(value):
        raise click.BadParameter(text.SINGLE_LINE_MESSAGE, ctx=ctx, param=param)
    return value


def multi_line(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """An address or a description: line breaks are fine, other control characters are not."""
    if isinstance(value, str) and not text.is_multi_line(value):
        raise click.BadParameter(text.MULTI_LINE_MESSAGE, ctx=ctx, param=param)
    return value
