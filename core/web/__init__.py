"""The web: everything that speaks HTTP.

Owns the JSON API under ``/api/v1`` (``api``), the server-rendered pages for clients, staff,
support and the marketplace (``pages``), the business a request names (``request_tenant``) and
the plugins' hooks around every such request (``tenant_requests``), who is signed in
(``identity``: Flask-Login's ``current_user``, found from the cookie of ``session_cookies`` or
the API's bearer), rate limits for the API and the pages (``ratelimits``), error pages
(``error_pages``), headers every answer carries (``security_headers``), themes (``themes``),
and the mounting of plugins' own routes and staff pages (``plugin_routes``,
``plugin_pages``); with its ``templates/`` (the e-mails' among them) and ``static/`` files.

May use: every domain package below it (:mod:`bookwell.core.booking`,
:mod:`bookwell.core.access`, :mod:`bookwell.core.scheduling` and what they use). Only the app
factory, the CLI and the test fixtures use the web.
"""
