"""Bookwell's booking core: the app factory and the booking service plugins are built around.

Arranged by concern, in layers (``docs/architecture.md`` draws them; ``lint-imports`` holds
them): ``cli`` and ``testing`` on top, then ``app``, ``web``, then the services the web calls
(``booking`` and ``scheduling``, over ``access``, ``context``, ``mail`` and ``schema``,
``pluginhost``, ``audit``), then ``storage`` and ``foundation``. Each package's docstring says
what it owns and what it may use.
"""

from bookwell.core import moved
from bookwell.core.app.factory import create_app

moved.install()

__all__ = ["create_app"]
