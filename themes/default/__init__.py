"""Bookwell's default theme for the client booking pages: ``templates/book/*.html`` and
``static/booking.css``. Loaded through the ``bookwell.themes`` entry point, as any theme is."""

TITLE = "Default"
# The page's colour behind links: a business's accent colour must read on it (4.5:1).
BACKGROUND = "#f4f6fa"
