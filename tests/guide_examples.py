"""The plugin guide's Python examples as modules, so that tests run them as a plugin author
would write them (``docs/plugins.md`` must stay true, not only compile)."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any

GUIDE = (Path(__file__).parent.parent / "docs" / "plugins.md").read_text()
PYTHON = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


def guide_block(heading: str, containing: str) -> str:
    """The one Python example of the guide's section ``## heading`` that contains
    ``containing``."""
    start = GUIDE.index(f"\n## {heading}\n")
    end = GUIDE.find("\n## ", start + 1)
    section = GUIDE[start : None if end == -1 else end]
    (code,) = [block for block in PYTHON.findall(section) if containing in block]
    return code


def guide_example(
    heading: str, containing: str, *more: tuple[str, str], **names: Any
) -> types.ModuleType:
    """The Python example of the guide's section ``## heading`` that contains ``containing``,
    run as a module; ``more`` are further ``(heading, containing)`` examples that the guide
    adds to the same module. ``names`` (e.g. the ``MANIFEST`` or the imports a fragment leaves
    out) are there before the code runs; what the code defines wins."""
    module = types.ModuleType(f"guide_example_{abs(hash((heading, containing, more)))}")
    module.__dict__.update(names)
    for where, text in ((heading, containing), *more):
        code = guide_block(where, text)
        exec(compile(code, f"docs/plugins.md, {where}", "exec"), module.__dict__)  # noqa: S102
    return module


def guide_package(
    root: Path, package: str, code: str, files: dict[str, str] | None = None
) -> types.ModuleType:
    """``code`` written out as ``root/package/__init__.py`` (with ``files`` beside it, e.g. a
    template) and imported, for examples whose blueprint finds its folders from its module's
    file. ``root`` must be on ``sys.path``; the caller forgets the module afterwards."""
    for path, text in {"__init__.py": code, **(files or {})}.items():
        target = root / package / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    sys.modules.pop(package, None)
    __import__(package)
    return sys.modules[package]
