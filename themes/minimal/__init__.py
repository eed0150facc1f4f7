"""Minimal: a quiet page of type and thin rules. One narrow column, a serif for headings, no
boxes or bars, the business's accent only where a client acts. Overrides ``book/base.html`` and
adds ``static/minimal.css`` on top of the default theme's stylesheet (which it reaches through
the static files' fallback), so every component of the default pages stays styled."""

TITLE = "Minimal"
BACKGROUND = "#ffffff"
