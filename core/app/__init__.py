"""The app: the one place where the parts of core are put together.

Owns the app factory (``factory.create_app``: configuration, storage, the plugin host and the
web, for a web process) and the job functions that RQ runs in a worker process (``jobs``: each
builds or is given its process's app).

May use: :mod:`bookwell.core.web` and everything below it. Used by the CLI and the test
fixtures only.
"""

from bookwell.core.app.factory import create_app

__all__ = ["create_app"]
