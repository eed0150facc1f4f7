"""Copy the few screenshots the README shows from the browser tests' last run
(``tests/artifacts/``) to ``docs/screenshots/``, refusing any over the size the repository
keeps them under.

    .venv/bin/pytest -q -p no:cacheprovider -m browser tests/browser
    python3 tests/browser/showcase.py"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
ARTIFACTS = REPOSITORY / "tests" / "artifacts"
SCREENSHOTS = REPOSITORY / "docs" / "screenshots"
LARGEST = 150_000  # bytes: the README's pictures, not a weight in every clone
PHONE_WALK = "test_browser_booking/test_a_client_books_and_cancels_on_a_phone-default-en"
KEYBOARD_WALK = "test_browser_booking/test_a_client_books_with_the_keyboard_alone"
STAFF_WALK = "test_browser_staff/test_the_owner_sets_up_two_step_login_and_a_plugin"
# docs/screenshots/<name>: the step's screenshot (its number varies, its name does not).
SHOWN = {
    "phone-calendar.png": (PHONE_WALK, "calendar"),
    "phone-details-consent.png": (PHONE_WALK, "details-refused"),
    "phone-confirmed.png": (PHONE_WALK, "confirmed"),
    "desktop-details-keyboard.png": (KEYBOARD_WALK, "details-filled"),
    "desktop-staff-two-step-login.png": (STAFF_WALK, "enrol"),
    "desktop-staff-marketplace-plugin.png": (STAFF_WALK, "marketplace-card"),
}


def main() -> int:
    problems = []
    for name, (walk, step) in SHOWN.items():
        found = sorted((ARTIFACTS / walk).glob(f"[0-9][0-9]-{step}.png"))
        if not found:
            problems.append(f"{name}: no screenshot of {step!r} in {ARTIFACTS / walk}")
        elif found[-1].stat().st_size > LARGEST:
            problems.append(f"{name}: {found[-1]} is {found[-1].stat().st_size} bytes")
        else:
            shutil.copyfile(found[-1], SCREENSHOTS / name)
            print(f"{SCREENSHOTS / name} <- {found[-1].relative_to(REPOSITORY)}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
