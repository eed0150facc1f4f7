"""Bookwell's booking core: the app factory and the booking service plugins are built around."""

from .app import create_app

__all__ = ["create_app"]
