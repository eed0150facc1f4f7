"""The owner's Markdown as safe HTML: no raw HTML, script, event handler or ``javascript:`` link
survives.

Two locks, each enough on its own: markdown-it renders with HTML off (raw tags come out as text)
and refuses unsafe link schemes; nh3 then keeps only the tags and attributes below, and only
``http``, ``https`` and ``mailto`` links. Images are left out: a T&C page loads nothing from
elsewhere.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "strong", "em",
    "code", "pre", "blockquote", "a",
}  # fmt: skip
ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
URL_SCHEMES = {"http", "https", "mailto"}

_renderer = MarkdownIt("commonmark", {"html": False})


def safe_html(text: str) -> str:
    """``text`` (Markdown) rendered, then sanitised."""
    return nh3.clean(
        _renderer.render(text),
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )
