"""Scheduled work: each tenant's periodic tasks and how they are run.

Owns the tasks (``schedule``: the plugins' ``on_schedule`` and the delivery of due mail, per
tenant, under a database lease without Redis) and what drives them (``tickers``: the ticker
in each ``bookwell serve`` process without Redis, or the Redis ticker that enqueues each
tenant's tasks once a period). The jobs themselves and the RQ worker that runs them build the
app of their process: they are :mod:`bookwell.core.app.jobs`, named here by path only.

May use: :mod:`bookwell.core.context`, :mod:`bookwell.core.mail`,
:mod:`bookwell.core.pluginhost`, :mod:`bookwell.core.storage`, :mod:`bookwell.core.foundation`.
"""
