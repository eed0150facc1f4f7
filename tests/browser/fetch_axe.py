"""Fetch axe-core, the accessibility checker the browser tests run in every page, from the npm
registry: the published tarball of one pinned version, checked against the integrity hash npm
records for it, unpacked to ``.cache/axe-core/<version>/axe.min.js`` (ignored by git).

    python3 tests/browser/fetch_axe.py      # .ci/run does this before the tests

Only the standard library: it runs before any virtualenv exists, and needs neither node nor npm
(``npm pack axe-core@<version>`` gives the very same tarball)."""

from __future__ import annotations

import base64
import hashlib
import io
import sys
import tarfile
import urllib.request
from pathlib import Path

AXE_VERSION = "4.14.1"
# `npm view axe-core@4.14.1 dist.integrity`: what the registry promised when it was published.
AXE_INTEGRITY = (
    "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ"
    "=="
)
AXE_TARBALL = f"https://registry.npmjs.org/axe-core/-/axe-core-{AXE_VERSION}.tgz"
REPOSITORY = Path(__file__).resolve().parents[2]
AXE_JS = REPOSITORY / ".cache" / "axe-core" / AXE_VERSION / "axe.min.js"
HOW_TO_GET_IT = (
    f"axe-core {AXE_VERSION} is missing at {AXE_JS}: run `python3 tests/browser/fetch_axe.py` "
    "(bash .ci/run does), which downloads it from the npm registry"
)


def integrity_of(tarball: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode("ascii")


def fetch(target: Path = AXE_JS) -> Path:
    if target.is_file():
        return target
    with urllib.request.urlopen(AXE_TARBALL, timeout=60) as answer:  # noqa: S310 (a fixed https URL)
        tarball = answer.read()
    found = integrity_of(tarball)
    if found != AXE_INTEGRITY:
        raise SystemExit(f"{AXE_TARBALL}: integrity {found}, expected {AXE_INTEGRITY}; not used")
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        member = archive.extractfile("package/axe.min.js")
        if member is None:
            raise SystemExit(f"{AXE_TARBALL} holds no package/axe.min.js")
        script = member.read()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    partial.write_bytes(script)
    partial.replace(target)  # a run stopped half-way leaves no truncated checker behind
    return target


if __name__ == "__main__":
    print(f"axe-core {AXE_VERSION}: {fetch()}")
    sys.exit(0)
