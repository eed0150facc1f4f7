"""Clinic: calm and high contrast, for practices whose clients may read less well. Larger type,
wide letters, big touch targets, strong focus rings, and the practice's details beside the
steps (below them on a phone). Overrides ``book/base.html`` and adds ``static/clinic.css`` on
top of the default theme's stylesheet (reached through the static files' fallback)."""

TITLE = "Clinic"
BACKGROUND = "#f5f8f8"
