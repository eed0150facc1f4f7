"""The plugin guide documents every hook: a new hook without a section fails here."""

from pathlib import Path

import pytest

from bookwell.hooks import CONTRIBUTIONS, EVENTS, GUARDS, specs

GUIDE = (Path(__file__).parent.parent / "docs" / "plugins.md").read_text()
DECLARED = sorted(name for name in dir(specs) if hasattr(getattr(specs, name), "bookwell_spec"))


def test_the_kinds_cover_every_declared_hook():
    assert sorted(GUARDS + EVENTS + CONTRIBUTIONS) == DECLARED


@pytest.mark.parametrize("hook", DECLARED)
def test_every_hook_has_its_own_section_in_the_guide(hook):
    assert f"### `{hook}`" in GUIDE


@pytest.mark.parametrize("hook", DECLARED)
def test_every_hook_is_documented_in_its_spec(hook):
    assert (getattr(specs, hook).__doc__ or "").strip()
