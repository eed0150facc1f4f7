"""The default theme's colours meet WCAG 2.1 AA, computed from the hex values in booking.css
(so a colour changed there is checked again): text 4.5:1 (1.4.3), field borders and the focus
ring 3:1 against what is around them (1.4.11)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import bookwell.themes.default

CSS = Path(bookwell.themes.default.__file__).parent / "static" / "booking.css"


def custom_properties(css: str) -> dict[str, str]:
    """The ``--name: #hex`` of the first ``:root`` block."""
    root = re.search(r":root\s*\{([^}]*)\}", css)
    assert root, "booking.css has no :root block"
    return {
        name: value.lower()
        for name, value in re.findall(r"--([a-z-]+)\s*:\s*(#[0-9a-fA-F]{6})\b", root.group(1))
    }


def rule(css: str, selector: str) -> str:
    """The declarations of the rule whose selector list holds ``selector``."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    for selectors, body in re.findall(r"([^{}]+)\{([^}]*)\}", css):
        if selector in [part.strip() for part in selectors.split(",")]:
            return body
    raise AssertionError(f"no rule for {selector!r} in booking.css")


def colour(value: str, properties: dict[str, str]) -> str:
    """A declaration's colour: a hex value, or a custom property (``var(--x)``) resolved."""
    named = re.search(r"var\(--([a-z-]+)\)", value)
    if named:
        return properties[named.group(1)]
    found = re.search(r"#[0-9a-fA-F]{6}\b", value)
    assert found, value
    return found.group(0).lower()


def declared(css: str, selector: str, name: str, properties: dict[str, str]) -> str:
    declarations = dict(
        (key.strip(), value.strip())
        for key, value in (
            part.split(":", 1) for part in rule(css, selector).split(";") if ":" in part
        )
    )
    return colour(declarations[name], properties)


def luminance(hex_colour: str) -> float:
    """WCAG 2.1's relative luminance."""
    channels = [int(hex_colour[index : index + 2], 16) / 255 for index in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first: str, second: str) -> float:
    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_the_formula_matches_known_ratios():
    assert contrast("#000000", "#ffffff") == pytest.approx(21)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert contrast("#9aa1ae", "#f4f6fa") == pytest.approx(2.4, abs=0.05)  # full days, before


@pytest.fixture(scope="module")
def css() -> str:
    return CSS.read_text()


@pytest.fixture(scope="module")
def props(css) -> dict[str, str]:
    return custom_properties(css)


def test_text_is_at_least_4_5_to_1_on_the_page_and_on_cards(css, props):
    page = declared(css, "body.book", "background", props)
    for text in ("ink", "muted", "danger"):
        for background in (page, props["paper"]):
            assert contrast(props[text], background) >= 4.5, (text, background)


def test_full_days_are_at_least_4_5_to_1(css, props):
    page = declared(css, "body.book", "background", props)
    full_day = declared(css, ".day-full span", "color", props)
    assert contrast(full_day, page) >= 4.5


def test_field_borders_are_at_least_3_to_1(css, props):
    border = declared(css, "input", "border", props)
    assert border == props["field-border"]
    for background in (props["paper"], declared(css, "body.book", "background", props)):
        assert contrast(border, background) >= 3


def test_the_focus_ring_is_at_least_3_to_1_and_never_left_to_the_browser(css, props):
    ring = declared(css, ":focus-visible", "outline", props)
    assert re.search(r"\b[2-9]px solid\b", rule(css, ":focus-visible"))
    for background in (props["paper"], declared(css, "body.book", "background", props)):
        assert contrast(ring, background) >= 3
