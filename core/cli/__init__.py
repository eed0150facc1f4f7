"""The ``bookwell`` command: one module per group of commands.

``root`` holds the group and the commands that run an instance (``init``, ``serve``,
``worker``, ``tick``, ``demo``); ``tenants``, ``plugins``, ``users`` (with ``tokens``), ``mail``
and ``audit`` hold their groups; ``instance`` is what every command works on (the instance, its
app, the schema check); ``demo`` makes the demo business.

May use: everything in core (it is the top layer, beside the test fixtures).
"""

from bookwell.core.cli.root import main

__all__ = ["main"]
