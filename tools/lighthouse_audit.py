"""Lighthouse's accessibility score of every client and staff page, on a desktop screen and on a
360-pixel phone, against a real Bookwell: run by hand (not in CI), before and after a change to
the pages, and its table put in the change's description.

    npm install --prefix .cache/lighthouse lighthouse@12      # once; .cache/ is ignored by git
    .venv/bin/python tools/lighthouse_audit.py [--only client|staff] [--viewport desktop|phone]

What it does, as an operator and a client would: ``bookwell demo`` in a temporary instance (the
demo business), an owner with a known password (``bookwell users create``), the
``cancellation_policy`` plugin switched on (for a plugin's staff page), ``bookwell serve`` on a
free loopback port. Playwright walks the client flow in each installed theme (services,
providers, day, times, details, and a real booking for the confirmed and manage pages) and logs
the owner in; Lighthouse (``CHROME_PATH=/usr/bin/chromium``, headless, never a downloaded
browser) then reads each address, the staff ones with the session's cookie (``--extra-headers``).
It prints page, viewport, score and each failing audit with the elements it names, and exits 1
when a page scores under 100.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
LIGHTHOUSE = REPOSITORY / ".cache" / "lighthouse" / "node_modules" / ".bin" / "lighthouse"
BOOKWELL = Path(sys.executable).parent / "bookwell"
CHROMIUM = "/usr/bin/chromium"
# As root, headless, reaching for nothing beyond loopback (see /work/shared/TESTING.md).
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SLUG = "demo"  # bookwell demo's business
OWNER = "audit-owner@demo.example"
PASSWORD = "a long passphrase for the audit"  # noqa: S105 (a throwaway instance's account)
PLUGIN_PAGE = "cancellation_policy"
VIEWPORTS = {
    "desktop": ["--preset=desktop"],
    "phone": [
        "--form-factor=mobile",
        "--screenEmulation.mobile",
        "--screenEmulation.width=360",
        "--screenEmulation.height=740",
        "--screenEmulation.deviceScaleFactor=2",
    ],
}
SERVER_START_SECONDS = 60
LIGHTHOUSE_SECONDS = 180


@dataclass
class Page:
    name: str
    url: str
    cookie: str | None = None


@dataclass
class Result:
    page: Page
    viewport: str
    score: int | None
    failing: list[str] = field(default_factory=list)


def environment(**extra: str) -> dict[str, str]:
    """Ours without Bookwell's settings: the server reads its instance folder's."""
    kept = {name: value for name, value in os.environ.items() if not name.startswith("BOOKWELL_")}
    kept.update(extra)
    return kept


def bookwell(instance: Path, *arguments: str, stdin: str | None = None) -> str:
    done = subprocess.run(  # noqa: S603 (our own command, with our arguments)
        [str(BOOKWELL), "--instance", str(instance), *arguments],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment(),
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"bookwell {' '.join(arguments)}: {done.stdout}{done.stderr}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 (loopback)
            return answer.status == 200
    except OSError:
        return False


@contextmanager
def demo_server(folder: Path) -> Iterator[tuple[str, Path]]:
    instance = folder / "instance"
    bookwell(instance, "demo")
    bookwell(
        instance,
        "users",
        "create",
        "--tenant",
        SLUG,
        "--email",
        OWNER,
        "--role",
        "owner",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    bookwell(instance, "plugins", "enable", PLUGIN_PAGE, "--tenant", SLUG)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 (as above)
        [str(BOOKWELL), "--instance", str(instance), "serve", "--port", str(port)]
        + ["--workers", "2"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=environment(BOOKWELL_BASE_URL=base_url, BOOKWELL_TICK_SECONDS="0"),
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not answers(base_url + "/healthz"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bookwell serve did not answer; see {folder / 'server.log'}")
            time.sleep(0.3)
        yield base_url, instance
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def follow(page, selector: str, arrives: str) -> str:
    page.locator(selector).first.click()
    page.wait_for_url(re.compile(arrives))
    return page.url


def client_pages(browser, base_url: str, instance: Path, theme: str, number: int) -> list[Page]:
    """One client's way through the flow in ``theme``, to a real booking."""
    bookwell(instance, "tenants", "set", SLUG, "--theme", theme)
    context = browser.new_context()
    page = context.new_page()
    found = []

    def seen(step: str) -> None:
        found.append(Page(f"{theme}: {step}", page.url))

    page.goto(f"{base_url}/book/{SLUG}/")
    seen("services")
    follow(page, 'a[href*="service="]', r"[?&]service=\d+")
    seen("providers")
    follow(page, 'a[href*="/day?"]:not([href*="provider=any"])', r"/day\?")
    seen("day")
    # The last free day shown: never today, whose times could pass during the audit.
    page.locator('a[href*="/slots?"]').last.click()
    page.wait_for_url(re.compile(r"/slots\?"))
    seen("slots")
    follow(page, 'a[href*="/details?"]', r"/details\?")
    seen("details")
    page.fill('input[name="name"]', "Ann Lee")
    page.fill('input[name="email"]', f"ann.{number}@example.com")
    for consent in page.locator('input[name="consents"]').all():
        consent.check()
    page.locator('form:has(input[name="email"]) [type="submit"]').click()
    page.wait_for_url(re.compile(r"/booked/"))
    seen("confirmed")
    page.locator('a[href*="/manage/"]').first.click()
    page.wait_for_url(re.compile(r"/manage/"))
    seen("manage")
    context.close()
    return found


def staff_pages(browser, base_url: str) -> list[Page]:
    """The owner's pages, found by following the menu and the first entry of each list."""
    admin = f"{base_url}/admin/{SLUG}"
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{admin}/login")
    pages = [Page("staff: login", page.url)]
    page.fill('input[name="email"]', OWNER)
    page.fill('input[name="password"]', PASSWORD)
    page.locator('form:has(input[name="password"]) [type="submit"]').click()
    page.wait_for_url(re.compile(f"/admin/{SLUG}/?$"))
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in context.cookies())

    def first_link(listing: str, pattern: str) -> str:
        page.goto(f"{admin}/{listing}")
        for href in page.locator("main a[href]").evaluate_all("a => a.map(l => l.href)"):
            if re.search(pattern, href):
                return href
        raise SystemExit(f"no link matching {pattern} on {admin}/{listing}")

    addresses = {
        "home (day)": f"{admin}/",
        "week": f"{admin}/week",
        "month": f"{admin}/month",
        "clients": f"{admin}/clients",
        "a client": first_link("clients", r"/clients/[^/?]+@"),
        "a booking": first_link("week", r"/bookings/[A-Z0-9-]+$"),
        "new booking": f"{admin}/bookings/new",
        "providers": f"{admin}/providers",
        "a provider": first_link("providers", r"/providers/\d+$"),
        "services": f"{admin}/services",
        "a service": first_link("services", r"/services/\d+$"),
        "staff": f"{admin}/staff",
        "sessions": f"{admin}/sessions",
        "audit": f"{admin}/audit",
        "business": f"{admin}/business",
        "brand": f"{admin}/business/brand",
        "marketplace": f"{admin}/marketplace",
        f"plugin {PLUGIN_PAGE}": f"{admin}/{PLUGIN_PAGE}/",
    }
    context.close()
    return pages + [Page(f"staff: {name}", url, cookie) for name, url in addresses.items()]


def lighthouse(page: Page, viewport: str, folder: Path) -> Result:
    command = [
        str(LIGHTHOUSE),
        page.url,
        "--only-categories=accessibility",
        "--output=json",
        "--output-path=stdout",
        "--quiet",
        "--throttling-method=provided",  # the score of accessibility does not depend on speed
        f"--chrome-flags={' '.join(CHROMIUM_FLAGS)} --user-data-dir={tempfile.mkdtemp(dir=folder)}",
        *VIEWPORTS[viewport],
    ]
    if page.cookie:
        command.append(f"--extra-headers={json.dumps({'Cookie': page.cookie})}")
    done = subprocess.run(  # noqa: S603 (Lighthouse, on addresses of our own server)
        command,
        capture_output=True,
        text=True,
        env=environment(CHROME_PATH=CHROMIUM),
        timeout=LIGHTHOUSE_SECONDS,
        check=False,
    )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        return Result(page, viewport, None, [f"lighthouse failed: {done.stderr.strip()[-300:]}"])
    if report.get("runtimeError"):
        return Result(page, viewport, None, [f"lighthouse: {report['runtimeError']['message']}"])
    if not re.search(rf"/{SLUG}/", report.get("finalDisplayedUrl", "")) or (
        page.cookie and "/login" in report["finalDisplayedUrl"]
    ):
        return Result(page, viewport, None, [f"sent to {report.get('finalDisplayedUrl')}"])
    score = report["categories"]["accessibility"]["score"]
    failing = []
    for reference in report["categories"]["accessibility"]["auditRefs"]:
        audit = report["audits"][reference["id"]]
        if audit["scoreDisplayMode"] in {"binary", "numeric"} and (audit["score"] or 0) < 1:
            items = (audit.get("details") or {}).get("items") or []
            where = [
                (item.get("node") or {}).get("selector") or (item.get("node") or {}).get("snippet")
                for item in items[:4]
            ]
            failing.append(f"{audit['id']} ({audit['title']}): {', '.join(map(str, where))}")
    return Result(page, viewport, round(score * 100) if score is not None else None, failing)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["client", "staff"])
    parser.add_argument("--viewport", choices=sorted(VIEWPORTS))
    parser.add_argument("--jobs", type=int, default=2, help="Lighthouse runs at once (2)")
    options = parser.parse_args()
    if not LIGHTHOUSE.is_file():
        raise SystemExit(f"no Lighthouse at {LIGHTHOUSE}: see this script's first lines")
    if not Path(CHROMIUM).is_file():
        raise SystemExit(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="lighthouse-") as temporary:
        folder = Path(temporary)
        with demo_server(folder) as (base_url, instance):
            listing = json.loads(bookwell(instance, "themes", "list", "--json"))
            themes = [theme["name"] for theme in listing]
            pages: list[Page] = []
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_FLAGS[1:]
                )
                for number, theme in enumerate(themes):
                    walked = client_pages(browser, base_url, instance, theme, number)
                    # Walked even when not audited: the staff pages need a client and a booking.
                    pages += walked if options.only != "staff" else []
                    if options.only == "staff":
                        break
                if options.only != "client":
                    pages += staff_pages(browser, base_url)
                browser.close()
            runs = [
                (page, viewport)
                for page in pages
                for viewport in VIEWPORTS
                if options.viewport in (None, viewport)
            ]
            # The business has one theme at a time: each theme's pages are read with it on.
            results: list[Result] = []
            by_theme: dict[str, list[tuple[Page, str]]] = {}
            for page, viewport in runs:
                by_theme.setdefault(page.name.split(":")[0], []).append((page, viewport))
            for group, group_runs in by_theme.items():
                if group in themes:
                    bookwell(instance, "tenants", "set", SLUG, "--theme", group)
                with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
                    results += pool.map(lambda run: lighthouse(*run, folder), group_runs)
    width = max(len(result.page.name) for result in results)
    print(f"{'page'.ljust(width)}  viewport  score  failing audits")
    for result in results:
        score = "-" if result.score is None else str(result.score)
        print(f"{result.page.name.ljust(width)}  {result.viewport:8}  {score:>5}  ", end="")
        print("; ".join(result.failing) or "")
    # Lighthouse rounds its score: a page is at 100 only with no failing audit either.
    below = [result for result in results if result.score != 100 or result.failing]
    print(f"\n{len(results) - len(below)} of {len(results)} at 100")
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
