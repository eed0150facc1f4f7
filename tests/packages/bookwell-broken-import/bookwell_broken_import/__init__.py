"""Imports a module that does not exist, as a plugin with a missing dependency would."""

import bookwell_dependency_that_is_not_installed  # noqa: F401
