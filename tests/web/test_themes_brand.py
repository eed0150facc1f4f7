"""A business's brand: the owner's page (accent checked for contrast, preview, description, a
logo validated and re-encoded), the brand stylesheet and the logo's route, walled per tenant."""

from __future__ import annotations

import functools
import io
import re
from html import unescape

import pytest
from conftest import add_staff_and_a_rival, csrf_token_of, log_in_staff
from PIL import Image
from sqlalchemy import select

from bookwell.core.booking import branding
from bookwell.core.storage import db
from bookwell.core.storage.models import AuditEntry, Tenant

BRAND = "/admin/salon/business/brand"
LOGO = "/admin/salon/business/brand/logo"


def picture(kind: str = "PNG", size=(300, 100), colour=(31, 92, 153), mode="RGB") -> bytes:
    image = Image.new(mode, size, colour)
    output = io.BytesIO()
    image.save(output, kind)
    return output.getvalue()


def noise(size) -> bytes:
    """A PNG that does not compress: random pixels."""
    import os

    image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    output = io.BytesIO()
    image.save(output, "PNG")
    return output.getvalue()


def stored(app, slug="salon") -> Tenant:
    with db.fresh_session(app) as session:
        tenant = session.scalars(select(Tenant).where(Tenant.slug == slug)).one()
        tenant.logo  # noqa: B018  (deferred: loaded while the session is open)
        session.expunge(tenant)
        return tenant


def audit_actions(app, tenant_id: int) -> list[str]:
    with db.fresh_session(app) as session:
        return list(
            session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.tenant_id == tenant_id)
                .order_by(AuditEntry.sequence)
            )
        )


@pytest.fixture
def staff(app, business, clock):
    """The owner signed in, a manager and a rival business (spa, owner spa@example.com)."""
    rival = add_staff_and_a_rival(app, business, clock(), ["owner", "manager"])
    return {
        "owner": log_in_staff(app, "owner@example.com"),
        "manager": log_in_staff(app, "manager@example.com"),
        "rival_id": rival,
    }


def save_brand(pages, accent, description="", theme="default", action="save"):
    form = pages.get(BRAND)
    assert form.status_code == 200, form.text[:300]
    return pages.post(
        BRAND,
        data={
            "csrf_token": csrf_token_of(form),
            "theme": theme,
            "accent": accent,
            "description": description,
            "action": action,
        },
    )


def upload(pages, data: bytes, filename="logo.png", path=LOGO, form_on=BRAND):
    form = pages.get(form_on)
    token = re.findall(r'name="csrf_token" type="hidden" value="([^"]+)"', form.text)[-1]
    return pages.post(
        path,
        data={"csrf_token": token, "logo": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )


# --- contrast ----------------------------------------------------------------------------------


def test_contrast_follows_wcag():
    assert branding.contrast("#000000", "#ffffff") == pytest.approx(21)
    assert branding.contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert branding.ink_for("#ffcc00") == "#000000" and branding.ink_for("#1f3a5f") == "#ffffff"


@pytest.mark.parametrize("pale", ["#ffee88", "#a0c4ff", "#cccccc", "#ff9900"])
def test_a_pale_accent_is_refused_with_a_shade_that_passes(pale):
    with pytest.raises(branding.BrandError) as refused:
        branding.check_accent(pale, "#ffffff")
    message = refused.value.message
    assert "too pale" in message and "4.5:1" in message
    suggestion = re.search(r"Try (#[0-9a-f]{6})", message)[1]
    assert branding.check_accent(suggestion, "#ffffff") == suggestion


def test_the_owner_saves_a_colour_a_description_and_a_theme(app, business, staff):
    answer = save_brand(staff["owner"], "#1F5C99", "Calm cuts.\nFree parking.", theme="clinic")
    assert answer.status_code == 302
    tenant = stored(app)
    assert (tenant.brand_colour, tenant.description, tenant.theme) == (
        "#1f5c99",
        "Calm cuts.\nFree parking.",
        "clinic",
    )
    assert "business.brand_updated" in audit_actions(app, business.tenant_id)
    page = staff["owner"].get(BRAND)
    assert 'value="#1f5c99"' in page.text and "The brand is saved" in page.text


def test_a_pale_accent_is_refused_beside_its_field_and_nothing_changes(app, business, staff):
    save_brand(staff["owner"], "#1f5c99", "Before.")
    answer = save_brand(staff["owner"], "#ffee88", "After.")
    assert answer.status_code == 422
    text = unescape(answer.text)
    refusal = r'<p class="field-error">#ffee88 is too pale to read: .* Try #[0-9a-f]{6}'
    assert re.search(refusal, text)
    tenant = stored(app)
    assert (tenant.brand_colour, tenant.description) == ("#1f5c99", "Before.")
    assert "After." in text  # what was typed is kept on the page


def test_the_contrast_is_checked_against_the_chosen_themes_background(app, business, staff):
    # 4.7:1 on white, 4.4:1 on the clinic theme's #f5f8f8 page.
    colour = "#737373"
    assert branding.passes(colour, "#ffffff") and not branding.passes(colour, "#f5f8f8")
    assert save_brand(staff["owner"], colour, theme="minimal").status_code == 302
    assert save_brand(staff["owner"], colour, theme="clinic").status_code == 422
    assert stored(app).theme == "minimal"


def test_a_description_with_control_characters_is_refused(app, business, staff):
    answer = save_brand(staff["owner"], "#1f5c99", "Bad\x00text")
    assert answer.status_code == 422
    assert stored(app).description == ""


def test_an_unknown_theme_is_refused(app, business, staff):
    assert save_brand(staff["owner"], "#1f5c99", theme="nope").status_code == 422
    assert stored(app).theme == "default"


def test_the_preview_shows_the_colour_without_saving_it(app, business, staff):
    answer = save_brand(staff["owner"], "#7a2e0e", "Soon.", action="preview")
    assert answer.status_code == 200
    assert "Preview (not saved yet)" in answer.text
    css_url = unescape(re.search(r'href="([^"]*/preview\.css\?[^"]*)"', answer.text)[1])
    css = staff["owner"].get(css_url)
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert "--accent: #7a2e0e;" in css.text and "--accent-ink: #ffffff;" in css.text
    assert stored(app).brand_colour is None
    # A colour that fails the check is never drawn, even asked for directly.
    assert (
        staff["owner"].get(f"{BRAND}/preview.css?accent=%23ffee88&theme=default").status_code == 404
    )


def test_only_the_owner_may_change_the_brand(app, business, staff, clock):
    assert staff["manager"].get(BRAND).status_code == 403
    form = staff["owner"].get(BRAND)
    answer = staff["manager"].post(
        BRAND,
        data={"csrf_token": csrf_token_of(form), "theme": "clinic", "accent": "#1f5c99"},
    )
    assert answer.status_code in (400, 403)
    rival = log_in_staff(app, "spa@example.com", slug="spa")
    assert rival.get(BRAND).status_code == 404  # another business's owner: nothing here
    assert upload(rival, picture(), form_on="/admin/spa/business/brand").status_code == 404
    assert staff["manager"].post(LOGO, data={}).status_code in (400, 403)
    tenant = stored(app)
    assert (tenant.theme, tenant.brand_colour, tenant.logo) == ("default", None, None)


def test_a_form_without_its_csrf_token_changes_nothing(app, business, staff):
    answer = staff["owner"].post(BRAND, data={"theme": "clinic", "accent": "#1f5c99"})
    assert answer.status_code == 422 and "nothing was saved" in answer.text
    assert stored(app).theme == "default"


def test_the_business_page_links_to_the_brand_page(business, staff):
    page = staff["owner"].get("/admin/salon/business")
    assert f'href="{BRAND}"' in page.text


# --- the logo ----------------------------------------------------------------------------------


def test_the_owner_uploads_a_logo_stored_re_encoded_and_served_with_its_type(
    app, business, staff, client
):
    # A picture with a text chunk of its own: nothing of the upload but its pixels survives.
    image = Image.new("RGBA", (1200, 400), (200, 30, 40, 255))
    output = io.BytesIO()
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "<script>alert(1)</script>")
    image.save(output, "PNG", pnginfo=info)
    raw = output.getvalue()
    answer = upload(staff["owner"], raw)
    assert answer.status_code == 302, answer.text[:500]
    tenant = stored(app)
    assert tenant.logo_type == "image/png" and tenant.logo != raw
    assert (tenant.logo_width, tenant.logo_height) == (640, 213)  # fitted in 640x240
    assert b"<script>" not in tenant.logo
    assert "business.logo_updated" in audit_actions(app, business.tenant_id)

    page = client.get("/book/salon/")
    src = unescape(re.search(r'<img class="brand-logo" src="([^"]+)"', page.text)[1])
    assert src == f"/book/salon/logo?v={tenant.logo_version}"
    served = client.get(src)
    assert served.status_code == 200 and served.mimetype == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "immutable" in served.headers["Cache-Control"]
    assert served.data == tenant.logo
    assert Image.open(io.BytesIO(served.data)).size == (640, 213)
    stale = client.get("/book/salon/logo?v=old")
    assert "immutable" not in stale.headers["Cache-Control"]


def test_a_jpeg_stays_a_jpeg_and_a_webp_becomes_a_png(app, business, staff):
    assert upload(staff["owner"], picture("JPEG"), "logo.jpg").status_code == 302
    assert stored(app).logo_type == "image/jpeg"
    assert upload(staff["owner"], picture("WEBP"), "logo.webp").status_code == 302
    assert stored(app).logo_type == "image/png"


@functools.cache
def refusals():
    png = picture()
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, "PNG")  # 48 KB that would decode to 400 Mpixels
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    return {
        "not an image": (b"just some text, not a picture\n", "not a PNG, JPEG or WebP"),
        "svg": (svg, "not a PNG, JPEG or WebP"),
        "gif": (picture("GIF"), "not a PNG, JPEG or WebP"),
        "garbage behind a png signature": (
            png[:16] + bytes(range(256)) * 8,
            "not a PNG, JPEG or WebP",
        ),
        "truncated png": (png[: len(png) // 2], "not a PNG, JPEG or WebP"),
        "polyglot": (png + b"<html><script>alert(1)</script></html>", "holds more than a picture"),
        "too wide": (picture(size=(5000, 20)), "at most 4000×4000"),
        "decompression bomb": (bomb.getvalue(), "far too large"),
        "too small": (picture(size=(8, 8)), "at least 16×16"),
        "oversized file": (noise((420, 420)), "at most 512 KB"),
        "empty": (b"", "Choose a picture file"),
    }


@pytest.mark.parametrize("case", list(refusals()))
def test_a_bad_logo_is_refused_beside_its_field_and_nothing_changes(app, business, staff, case):
    assert upload(staff["owner"], picture(colour=(0, 0, 0))).status_code == 302
    before = stored(app)
    actions = audit_actions(app, business.tenant_id)
    data, expected = refusals()[case]
    answer = upload(staff["owner"], data, "logo.png")
    assert answer.status_code == 422, (case, answer.status_code)
    text = unescape(answer.text)
    assert re.search(r'<p class="field-error">[^<]*' + re.escape(expected), text), text[-3000:]
    after = stored(app)
    assert (after.logo, after.logo_version, after.logo_type) == (
        before.logo,
        before.logo_version,
        before.logo_type,
    )
    assert audit_actions(app, business.tenant_id) == actions


def test_a_body_far_over_the_limit_is_refused_before_it_is_read(app, business, staff):
    answer = upload(staff["owner"], b"\x89PNG" + b"\0" * (3 * 1024 * 1024))
    assert answer.status_code == 413
    assert stored(app).logo is None


def test_the_owner_removes_the_logo(app, business, staff, client):
    upload(staff["owner"], picture())
    page = staff["owner"].get(BRAND)
    token = re.findall(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)[-1]
    answer = staff["owner"].post(f"{LOGO}/remove", data={"csrf_token": token})
    assert answer.status_code == 302
    assert stored(app).logo is None
    assert client.get("/book/salon/logo").status_code == 404
    assert "brand-logo" not in client.get("/book/salon/").text
    assert "business.logo_removed" in audit_actions(app, business.tenant_id)


# --- walls and the stylesheet --------------------------------------------------------------------


def test_a_slug_serves_only_its_own_logo(app, business, staff, client):
    upload(staff["owner"], picture(colour=(200, 0, 0)))
    assert client.get("/book/spa/logo").status_code == 404  # spa has none of its own
    rival = log_in_staff(app, "spa@example.com", slug="spa")
    spa_brand = "/admin/spa/business/brand"
    answer = upload(rival, picture(colour=(0, 0, 200)), path=f"{spa_brand}/logo", form_on=spa_brand)
    assert answer.status_code == 302
    salon, spa = client.get("/book/salon/logo"), client.get("/book/spa/logo")
    assert Image.open(io.BytesIO(salon.data)).getpixel((0, 0))[:3] == (200, 0, 0)
    assert Image.open(io.BytesIO(spa.data)).getpixel((0, 0))[:3] == (0, 0, 200)
    assert client.get("/book/nobody/logo").status_code == 404


def test_the_brand_stylesheet_carries_the_tenants_colour_and_only_its_own(
    app, business, staff, client
):
    save_brand(staff["owner"], "#1f5c99", theme="minimal")
    rival = log_in_staff(app, "spa@example.com", slug="spa")
    spa_brand = "/admin/spa/business/brand"
    page = rival.get(spa_brand)
    rival.post(
        spa_brand,
        data={"csrf_token": csrf_token_of(page), "theme": "minimal", "accent": "#7a2e0e"},
    )
    salon = client.get("/book/salon/brand.css")
    spa = client.get("/book/spa/brand.css")
    assert salon.mimetype == "text/css"
    assert "--accent: #1f5c99; --accent-ink: #ffffff;" in salon.text
    assert "--brand: #1f5c99;" in salon.text and "#7a2e0e" not in salon.text
    assert "--accent: #7a2e0e;" in spa.text and "#1f5c99" not in spa.text
    # Pages link it with the colour's version, which may be kept long; a new colour, a new URL.
    start = client.get("/book/salon/").text
    link = re.search(r'href="(/book/salon/brand\.css\?v=[0-9a-f]+)"', start)
    versioned = client.get(link[1])
    assert "immutable" in versioned.headers["Cache-Control"]
    save_brand(staff["owner"], "#2d6a4f", theme="minimal")
    assert link[1] not in client.get("/book/salon/").text
    assert "immutable" not in client.get(link[1]).headers["Cache-Control"]
    # The default theme links it by version too: a changed colour is never served stale.
    save_brand(staff["owner"], "#2d6a4f", theme="default")
    default = client.get("/book/salon/").text
    assert re.search(r'href="/book/salon/brand\.css\?v=[0-9a-f]+"', default)


@pytest.mark.parametrize("theme", ["default", "minimal", "clinic"])
def test_the_logo_and_description_show_in_every_theme(app, business, staff, client, theme):
    save_brand(staff["owner"], "#1f5c99", "Calm cuts in the old town.", theme=theme)
    upload(staff["owner"], picture())
    start = client.get("/book/salon/")
    assert 'class="brand-logo"' in start.text
    assert '<p class="brand-description">Calm cuts in the old town.</p>' in start.text
    providers = client.get(f"/book/salon/?service={business.service_id}")
    assert 'class="brand-logo"' in providers.text
    assert "brand-description" not in providers.text  # said once, on the first page
