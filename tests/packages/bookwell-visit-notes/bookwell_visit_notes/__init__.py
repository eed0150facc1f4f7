"""Notes staff keep about a client's visits. Installed like any PyPI plugin; its only purpose in
Bookwell's tests is to own a table (``visit_notes_entries``) with its own migrations."""

from bookwell.hooks import Manifest, hookimpl

MANIFEST = Manifest(
    name="visit_notes",
    title="Visit notes",
    description="Keep notes about each client's visits.",
    version="0.1.0",
    category="clients",
    author="Bookwell tests",
)


@hookimpl
def migrations():
    return "bookwell_visit_notes:migrations"
