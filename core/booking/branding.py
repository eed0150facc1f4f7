"""A business's brand on its booking pages: an accent colour, a logo and a short description.

The accent is checked against the theme it will be drawn on (WCAG 2.1: at least 4.5:1 against
the theme's background, where links and outlines use it, and against the text drawn on it, on
buttons); a colour that fails is refused with a darker or lighter shade of it that passes.

A logo is accepted only as a raster picture (PNG, JPEG or WebP; SVG can carry scripts and is
refused), decoded by Pillow with its size checked before any pixel is read, refused when the
file carries bytes past the picture's end (a polyglot), and stored re-encoded: what is served is
pixels that Pillow wrote, never a byte of the upload. Every change runs in one write transaction
and is audited in it, like the business's other details.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from dataclasses import dataclass
from datetime import datetime

from babel.numbers import format_decimal
from flask import Flask
from flask_babel import gettext
from PIL import Image, ImageOps, UnidentifiedImageError

from bookwell.core import audit
from bookwell.core.context import request_info
from bookwell.core.foundation import locales, text
from bookwell.core.storage import db
from bookwell.core.storage.models import Tenant

HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_ACCENT = "#3d4a5c"
MINIMUM_CONTRAST = 4.5  # WCAG 2.1 AA for normal text (1.4.3), above 3:1 for outlines (1.4.11)
MAX_DESCRIPTION = 1000

MAX_LOGO_BYTES = 512 * 1024
MAX_LOGO_SIDE = 4000  # pixels, either side, of the file uploaded
MIN_LOGO_SIDE = 16
# What is kept: big enough for a header at twice the pixel density, small enough for every page.
STORED_BOX = (640, 240)
FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


class BrandError(ValueError):
    """A refusal naming the field it is about (``field``), said as a person reads it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# --- colours ---------------------------------------------------------------------------------


def _channels(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def luminance(colour: str) -> float:
    """Relative luminance as WCAG 2.1 defines it, from 0 (black) to 1 (white)."""

    def linear(channel: int) -> float:
        value = channel / 255
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (linear(channel) for channel in _channels(colour))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(first: str, second: str) -> float:
    """The WCAG contrast ratio of two ``#rrggbb`` colours, from 1 to 21."""
    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def ink_for(colour: str) -> str:
    """Black or white, whichever reads better on ``colour``."""
    return "#000000" if contrast(colour, "#000000") >= contrast(colour, "#ffffff") else "#ffffff"


def passes(colour: str, background: str) -> bool:
    return (
        contrast(colour, background) >= MINIMUM_CONTRAST
        and contrast(colour, ink_for(colour)) >= MINIMUM_CONTRAST
    )


def mix(colour: str, towards: str, share: float) -> str:
    mixed = (
        round(channel + (target - channel) * share)
        for channel, target in zip(_channels(colour), _channels(towards), strict=True)
    )
    return "#" + "".join(f"{channel:02x}" for channel in mixed)


def nearest_passing(colour: str, background: str) -> str:
    """The shade of ``colour`` closest to it (mixed with black, or else white) that passes."""
    for step in range(1, 21):
        for towards in ("#000000", "#ffffff"):
            candidate = mix(colour, towards, step / 20)
            if passes(candidate, background):
                return candidate
    return DEFAULT_ACCENT


def check_accent(colour: str, background: str) -> str:
    """``colour`` as stored (``#rrggbb``, lower case), or :class:`BrandError` saying why not."""
    colour = colour.strip()
    if not HEX_COLOUR.match(colour):
        raise BrandError(
            "accent", gettext("Write the colour as # and six hexadecimal digits: #1f5c99.")
        )
    colour = colour.lower()
    if passes(colour, background):
        return colour
    against_page = contrast(colour, background)
    against_text = contrast(colour, ink_for(colour))
    worst = min(against_page, against_text)
    suggestion = nearest_passing(colour, background)
    language = locales.formatting_locale(locales.current_language())
    numbers = {
        "colour": colour,
        "worst": format_decimal(worst, "0.0", locale=language),
        "minimum": format_decimal(MINIMUM_CONTRAST, "0.0", locale=language),
        "suggestion": suggestion,
    }
    if against_page <= against_text:
        message = gettext(
            "%(colour)s is too pale to read: its contrast with the page's background is "
            "%(worst)s:1, and at least %(minimum)s:1 is needed. Try %(suggestion)s, a shade of "
            "it that passes.",
            **numbers,
        )
    else:
        message = gettext(
            "%(colour)s is too pale to read: its contrast with the text on buttons is "
            "%(worst)s:1, and at least %(minimum)s:1 is needed. Try %(suggestion)s, a shade of "
            "it that passes.",
            **numbers,
        )
    raise BrandError("accent", message)


def accent_of(tenant: Tenant) -> str:
    """The tenant's accent as the pages draw it: its own if well formed, else the default."""
    colour = tenant.brand_colour or ""
    return colour.lower() if HEX_COLOUR.match(colour) else DEFAULT_ACCENT


# --- the logo --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Logo:
    data: bytes
    content_type: str
    width: int
    height: int
    version: str


def _ends_with_the_picture(raw: bytes, kind: str) -> bool:
    """Whether the file stops where the picture does: bytes after it are a second file riding
    along (a polyglot: HTML, a script, an archive), which no logo needs."""
    if kind == "PNG":
        return raw.endswith(b"IEND\xaeB`\x82")
    if kind == "JPEG":
        return raw.endswith(b"\xff\xd9")
    declared = int.from_bytes(raw[4:8], "little") + 8  # WebP: the RIFF container says its size
    return declared in (len(raw), len(raw) - 1)


def read_logo(raw: bytes) -> Logo:
    """The picture in ``raw``, re-encoded, or :class:`BrandError` saying what is wrong."""
    if not raw:
        raise BrandError("logo", gettext("Choose a picture file to upload."))
    if len(raw) > MAX_LOGO_BYTES:
        raise BrandError(
            "logo",
            gettext(
                "The file is %(size)d KB; a logo may be at most %(limit)d KB. Save it smaller and "
                "try again.",
                size=len(raw) // 1024,
                limit=MAX_LOGO_BYTES // 1024,
            ),
        )
    not_a_picture = BrandError("logo", gettext("This file is not a PNG, JPEG or WebP picture."))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw), formats=list(FORMATS))
            kind = image.format or ""
            width, height = image.size
            # Only the header is read so far: the size is refused before any pixel is decoded.
            if width > MAX_LOGO_SIDE or height > MAX_LOGO_SIDE:
                raise BrandError(
                    "logo",
                    gettext(
                        "The picture is %(width)d×%(height)d pixels; a logo may be at most "
                        "%(side)d×%(side)d.",
                        width=width,
                        height=height,
                        side=MAX_LOGO_SIDE,
                    ),
                )
            if width < MIN_LOGO_SIDE or height < MIN_LOGO_SIDE:
                raise BrandError(
                    "logo",
                    gettext(
                        "The picture is %(width)d×%(height)d pixels; a logo needs at least "
                        "%(side)d×%(side)d.",
                        width=width,
                        height=height,
                        side=MIN_LOGO_SIDE,
                    ),
                )
            if kind not in FORMATS:
                raise not_a_picture
            image.load()  # a truncated or corrupt picture fails here
            if not _ends_with_the_picture(raw, kind):
                raise BrandError(
                    "logo", gettext("This file holds more than a picture; export the logo again.")
                )
            image = ImageOps.exif_transpose(image)
        return _reencoded(image, kind)
    except BrandError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own guard, for sizes far past ours: refused before any pixel is decoded.
        raise BrandError(
            "logo",
            gettext(
                "The picture is far too large; a logo may be at most %(side)d×%(side)d pixels.",
                side=MAX_LOGO_SIDE,
            ),
        ) from None
    except UnidentifiedImageError:
        raise not_a_picture from None
    except (OSError, ValueError, SyntaxError, EOFError):  # truncated, corrupt, or undrawable
        raise not_a_picture from None


def _reencoded(image: Image.Image, kind: str) -> Logo:
    image.thumbnail(STORED_BOX, Image.Resampling.LANCZOS)
    output = io.BytesIO()
    if kind == "JPEG":  # photographs stay JPEG: as PNG they would weigh several times more
        image.convert("RGB").save(output, "JPEG", quality=88, optimize=True)
        content_type = FORMATS["JPEG"]
    else:
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        image.convert("RGBA" if has_alpha else "RGB").save(output, "PNG", optimize=True)
        content_type = FORMATS["PNG"]
    data = output.getvalue()
    return Logo(
        data=data,
        content_type=content_type,
        width=image.width,
        height=image.height,
        version=hashlib.sha256(data).hexdigest()[:16],
    )


# --- changes ---------------------------------------------------------------------------------


def check_description(description: str) -> str:
    description = description.strip()
    if not text.is_multi_line(description):
        raise BrandError("description", text.MULTI_LINE_MESSAGE)
    if len(description) > MAX_DESCRIPTION:
        raise BrandError(
            "description",
            gettext(
                "Keep the description to %(limit)d characters or fewer.", limit=MAX_DESCRIPTION
            ),
        )
    return description


def _record(session, tenant_id: int, actor: object, action: str, details, now: datetime) -> None:
    info = request_info()
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=audit.actor_label(actor),
        ip=info.ip if info else None,
        action=action,
        subject=f"tenant:{tenant_id}",
        details=details,
        now=now,
    )


def update_brand(
    app: Flask,
    *,
    tenant_id: int,
    accent: str,
    description: str,
    theme: str,
    background: str,
    actor: object,
    now: datetime,
) -> Tenant:
    """The accent colour (checked against ``background``, the chosen theme's), the description
    and the theme (the caller checks it is installed), audited as ``business.brand_updated``."""
    values = {
        "brand_colour": check_accent(accent, background),
        "description": check_description(description),
        "theme": theme,
    }
    with db.write_transaction(app) as session:
        tenant = session.get(Tenant, tenant_id)
        # What the page showed for an unset value (the default accent, no description) sent
        # back as it was is no change: the tenant keeps following the default.
        if tenant.brand_colour is None and values["brand_colour"] == accent_of(tenant):
            del values["brand_colour"]
        if tenant.description is None and not values["description"]:
            del values["description"]
        changed = {key: value for key, value in values.items() if getattr(tenant, key) != value}
        for key, value in changed.items():
            setattr(tenant, key, value)
        session.flush()
        if changed:
            _record(session, tenant_id, actor, "business.brand_updated", changed, now)
        return tenant


def replace_logo(app: Flask, *, tenant_id: int, logo: Logo, actor: object, now: datetime) -> None:
    with db.write_transaction(app) as session:
        tenant = session.get(Tenant, tenant_id)
        tenant.logo = logo.data
        tenant.logo_type = logo.content_type
        tenant.logo_width = logo.width
        tenant.logo_height = logo.height
        tenant.logo_version = logo.version
        details = {
            "type": logo.content_type,
            "width": logo.width,
            "height": logo.height,
            "bytes": len(logo.data),
            "version": logo.version,
        }
        _record(session, tenant_id, actor, "business.logo_updated", details, now)


def remove_logo(app: Flask, *, tenant_id: int, actor: object, now: datetime) -> bool:
    """Whether there was a logo to remove."""
    with db.write_transaction(app) as session:
        tenant = session.get(Tenant, tenant_id)
        if tenant.logo_version is None:
            return False
        tenant.logo = None
        tenant.logo_type = tenant.logo_width = tenant.logo_height = tenant.logo_version = None
        _record(session, tenant_id, actor, "business.logo_removed", {}, now)
        return True
