"""Scheduled work: each tenant's periodic tasks and how they are run.

Owns the tasks (``schedule``: the plugins' ``on_schedule`` and the delivery of due mail, per
tenant, under a database lease without Redis) and how they are driven (``jobs``: the ticker in
each process, or the Redis ticker and the RQ worker). The job functions themselves, which build
the app of the process they run in, are :mod:`bookwell.core.app.jobs`, named here by path only.

May use: :mod:`bookwell.core.context`, :mod:`bookwell.core.mail`,
:mod:`bookwell.core.pluginhost`, :mod:`bookwell.core.storage`, :mod:`bookwell.core.foundation`.
"""
