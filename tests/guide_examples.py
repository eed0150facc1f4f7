"""The plugin guide's Python examples as modules, so that tests run them as a plugin author
would write them (``docs/plugins.md`` must stay true, not only compile)."""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any

GUIDE = (Path(__file__).parent.parent / "docs" / "plugins.md").read_text()
PYTHON = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


def guide_example(heading: str, containing: str, **names: Any) -> types.ModuleType:
    """The Python example of the guide's section ``## heading`` that contains ``containing``,
    run as a module; ``names`` (e.g. the ``MANIFEST`` the guide leaves out) are added to it."""
    start = GUIDE.index(f"\n## {heading}\n")
    end = GUIDE.find("\n## ", start + 1)
    section = GUIDE[start : None if end == -1 else end]
    (code,) = [block for block in PYTHON.findall(section) if containing in block]
    module = types.ModuleType(f"guide_example_{abs(hash((heading, containing)))}")
    exec(compile(code, f"docs/plugins.md, {heading}", "exec"), module.__dict__)
    module.__dict__.update(names)
    return module
