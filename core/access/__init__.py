"""Accounts and access: who someone is and what they may do.

Owns users and their passwords (``users``, ``passwords``: argon2id and core's own floor), the
one login path for pages and API alike (``login``), server-side sessions, bearer tokens and API
keys (``sessions``), the permission table of roles (``permissions``) and client accounts'
single-use links for verification and password reset (``client_accounts``). Cookies and the
request's signed-in user are the web's (:mod:`bookwell.core.web.identity`).

May use: :mod:`bookwell.core.context` (to ask plugins: ``before_login``, password checks),
:mod:`bookwell.core.mail`, :mod:`bookwell.core.pluginhost`, :mod:`bookwell.core.audit`,
:mod:`bookwell.core.storage`, :mod:`bookwell.core.foundation`.
"""
