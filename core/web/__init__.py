"""The web: everything that speaks HTTP.

Owns the JSON API under ``/api/v1`` (``api``), the server-rendered pages for clients, staff,
support and the marketplace (``pages``), the hooks around every request naming a tenant
(``tenant_requests``), who is signed in (``identity``: Flask-Login's ``current_user``, found
from the session cookie of ``web_sessions`` or the API's bearer), error pages
(``error_pages``), headers every answer carries (``security_headers``), themes (``themes``),
and the mounting of plugins' own routes and staff pages (``plugin_routes``,
``plugin_pages``); with its ``templates/`` and ``static/`` files.

May use: every domain package below it (:mod:`bookwell.core.booking`,
:mod:`bookwell.core.access`, :mod:`bookwell.core.scheduling` and what they use). Only the app
factory, the CLI and the test fixtures use the web.
"""
