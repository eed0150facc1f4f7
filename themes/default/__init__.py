"""Bookwell's default theme for the client booking pages: ``templates/book/*.html`` and
``static/booking.css``. Loaded through the ``bookwell.themes`` entry point, as any theme is."""
