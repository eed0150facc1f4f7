"""A business's brand: the owner's page to set it, and the two routes that bring it to the pages.

* ``/admin/<slug>/business/brand`` (owners): theme, accent colour and description, with a
  preview before saving; a logo uploaded or removed from the same page. Audited as the other
  business details are (core/booking/branding.py).
* ``/book/<slug>/brand.css``: the accent as CSS custom properties (``--accent``, ``--accent-ink``,
  ``--accent-soft``, and the older ``--brand``/``--brand-ink``). Pages link it with ``?v=``, the
  colour's version: an answer for the current version may be kept a year.
* ``/book/<slug>/logo``: the tenant's own logo, re-encoded on upload, with its type and nosniff;
  ``?v=`` as above. A slug only ever serves its own row's picture.

No style is ever inline (the CSP forbids it): the preview draws with a stylesheet of its own.
"""

from __future__ import annotations

import hashlib

from flask import Flask, Response, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext, lazy_gettext
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from sqlalchemy import select
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from bookwell.core.booking import branding
from bookwell.core.foundation import clock
from bookwell.core.storage import db
from bookwell.core.storage.models import Tenant
from bookwell.core.web import themes
from bookwell.core.web.forms import MultiLine, SingleLine
from bookwell.core.web.pages.admin import admin_pages, page, require_page
from bookwell.core.web.pages.admin_catalogue import line_breaks
from bookwell.core.web.pages.booking import booking_pages
from bookwell.core.web.request_tenant import current_tenant

YEAR = 365 * 24 * 3600
# The logo's form may carry the file and multipart's framing; past this Flask answers 413. Below
# it, a file over branding.MAX_LOGO_BYTES is refused beside its field, in words.
UPLOAD_LIMIT = 2 * 1024 * 1024
LOGO_ENDPOINT = "admin.brand_logo"


def _tenant(slug: str) -> Tenant:
    tenant = current_tenant(slug)
    if tenant is None:
        abort(404)
    return tenant


def brand_version(tenant: Tenant) -> str:
    """Changes when the brand stylesheet's content does: its URL carries it."""
    return hashlib.sha256(branding.accent_of(tenant).encode()).hexdigest()[:10]


def _cache_for(version: str | None) -> str:
    # A URL naming the current version never changes content; any other is kept briefly.
    if version is not None and request.args.get("v") == version:
        return f"public, max-age={YEAR}, immutable"
    return "public, max-age=300"


def accent_properties(accent: str) -> str:
    ink = branding.ink_for(accent)
    soft = branding.mix(accent, "#ffffff", 0.88)
    return (
        f"--brand: {accent}; --brand-ink: {ink}; "
        f"--accent: {accent}; --accent-ink: {ink}; --accent-soft: {soft};"
    )


@booking_pages.get("/brand.css")
def brand_css(slug: str):
    tenant = _tenant(slug)
    response = Response(f":root {{ {accent_properties(branding.accent_of(tenant))} }}\n")
    response.mimetype = "text/css"
    response.headers["Cache-Control"] = _cache_for(brand_version(tenant))
    return response


@booking_pages.get("/logo")
def logo(slug: str):
    tenant = _tenant(slug)
    if tenant.logo_version is None:
        abort(404)
    # Read by the tenant's own id: the picture of the row the slug named, and no other.
    data, content_type = (
        db.session()
        .execute(select(Tenant.logo, Tenant.logo_type).where(Tenant.id == tenant.id))
        .one()
    )
    if data is None or content_type not in branding.FORMATS.values():
        abort(404)
    response = Response(data, mimetype=content_type)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Disposition"] = "inline"
    response.headers["Cache-Control"] = _cache_for(tenant.logo_version)
    return response


@booking_pages.app_template_global("brand_stylesheet_url")
def brand_stylesheet_url(tenant: Tenant) -> str:
    return url_for("booking_pages.brand_css", slug=tenant.slug, v=brand_version(tenant))


@booking_pages.app_template_global("brand_logo_url")
def brand_logo_url(tenant: Tenant) -> str | None:
    if tenant.logo_version is None:
        return None
    return url_for("booking_pages.logo", slug=tenant.slug, v=tenant.logo_version)


# --- the owner's page ------------------------------------------------------------------------


class BrandForm(FlaskForm):
    theme = SelectField(
        lazy_gettext("Theme of the booking pages"), validators=[SingleLine(), DataRequired()]
    )
    accent = StringField(
        lazy_gettext("Accent colour"),
        validators=[
            SingleLine(),
            DataRequired(lazy_gettext("Choose a colour.")),
            Length(
                max=7,
                message=lazy_gettext("Write the colour as # and six hexadecimal digits: #1f5c99."),
            ),
        ],
        description=lazy_gettext(
            "As # and six hexadecimal digits, e.g. #1f5c99: buttons, links and the header. It "
            "must read at 4.5:1 or more on the theme's background and under the text on buttons; "
            "Preview shows it before you save."
        ),
    )
    description = TextAreaField(
        lazy_gettext("Description"),
        validators=[MultiLine(), Length(max=branding.MAX_DESCRIPTION)],
        filters=[line_breaks],
        description=lazy_gettext("A few words clients read on your booking page."),
    )


class LogoForm(FlaskForm):
    logo = FileField(
        lazy_gettext("Logo"),
        description=lazy_gettext(
            "PNG, JPEG or WebP, at most %(kilobytes)d KB and %(side)d×%(side)d pixels. It is "
            "stored re-drawn, at most %(width)d×%(height)d.",
            kilobytes=branding.MAX_LOGO_BYTES // 1024,
            side=branding.MAX_LOGO_SIDE,
            width=branding.STORED_BOX[0],
            height=branding.STORED_BOX[1],
        ),
    )


class RemoveLogoForm(FlaskForm):
    pass


def _installed() -> dict[str, themes.Theme]:
    return current_app.extensions[themes.EXTENSION]["themes"]


def _brand_page(tenant, user, status: int, form: BrandForm, **values):
    return page(
        "admin/brand.html",
        tenant,
        user,
        status,
        form=form,
        logo_form=values.pop("logo_form", None) or LogoForm(formdata=None),
        remove_form=RemoveLogoForm(formdata=None),
        logo_url=brand_logo_url(tenant),
        booking_url=url_for("booking_pages.start", slug=tenant.slug),
        **values,
    )


def _brand_form(tenant: Tenant, formdata=None) -> BrandForm:
    form = BrandForm(
        formdata=formdata,
        data={
            "theme": tenant.theme if tenant.theme in _installed() else themes.DEFAULT,
            "accent": branding.accent_of(tenant),
            "description": tenant.description or "",
        },
    )
    form.theme.choices = [
        (theme.name, theme.title)
        for theme in sorted(_installed().values(), key=lambda theme: theme.name)
    ]
    return form


@admin_pages.route("/business/brand", methods=["GET", "POST"])
def brand(slug: str):
    tenant, user = require_page(slug, "business.manage", "business")
    form = _brand_form(tenant, request.form if request.method == "POST" else None)
    if request.method == "GET":
        return _brand_page(tenant, user, 200, form)
    errors: list[str] = []
    if form.validate_on_submit():
        chosen = _installed()[form.theme.data]
        try:
            accent = branding.check_accent(form.accent.data, chosen.background)
            description = branding.check_description(form.description.data or "")
            if request.form.get("action") == "preview":
                preview = url_for(
                    "admin.brand_preview_css", slug=slug, accent=accent, theme=chosen.name
                )
                return _brand_page(
                    tenant, user, 200, form, preview_css=preview, preview_text=description
                )
            branding.update_brand(
                current_app._get_current_object(),
                tenant_id=tenant.id,
                accent=accent,
                description=description,
                theme=chosen.name,
                background=chosen.background,
                actor=user,
                now=clock.now(),
            )
        except branding.BrandError as error:
            getattr(form, error.field).errors = [error.message]
        else:
            flash(gettext("The brand is saved: your booking pages show it now."))
            return redirect(url_for(".brand", slug=slug))
    if form.csrf_token.errors:
        errors.append(gettext("The form had expired; nothing was saved. Please send it again."))
    else:
        errors.append(gettext("Please correct the marked fields."))
    return _brand_page(tenant, user, 422, form, errors=errors)


@admin_pages.post("/business/brand/logo")
def brand_logo(slug: str):
    tenant, user = require_page(slug, "business.manage", "business")
    form = LogoForm()
    if form.validate_on_submit():
        upload = form.logo.data
        try:
            if upload is None or not getattr(upload, "filename", ""):
                raise branding.BrandError("logo", gettext("Choose a picture file to upload."))
            raw = upload.stream.read(branding.MAX_LOGO_BYTES + 1)
            logo_read = branding.read_logo(raw)
        except branding.BrandError as error:
            form.logo.errors = [error.message]
        else:
            branding.replace_logo(
                current_app._get_current_object(),
                tenant_id=tenant.id,
                logo=logo_read,
                actor=user,
                now=clock.now(),
            )
            flash(
                gettext(
                    "The logo is saved (%(width)d×%(height)d pixels).",
                    width=logo_read.width,
                    height=logo_read.height,
                )
            )
            return redirect(url_for(".brand", slug=slug))
    return _brand_page(
        tenant,
        user,
        422,
        _brand_form(tenant),
        logo_form=form,
        errors=[gettext("The logo was not changed.")],
    )


@admin_pages.post("/business/brand/logo/remove")
def remove_brand_logo(slug: str):
    tenant, user = require_page(slug, "business.manage", "business")
    if not RemoveLogoForm().validate_on_submit():
        abort(400)
    removed = branding.remove_logo(
        current_app._get_current_object(), tenant_id=tenant.id, actor=user, now=clock.now()
    )
    flash(gettext("The logo is removed.") if removed else gettext("There was no logo to remove."))
    return redirect(url_for(".brand", slug=slug))


@admin_pages.get("/business/brand/preview.css")
def brand_preview_css(slug: str):
    """The preview's colours, for a colour not saved yet: a stylesheet, since no style may be
    inline. Only a colour that passes the check is drawn."""
    require_page(slug, "business.manage", "business")
    chosen = _installed().get(request.args.get("theme", ""))
    accent = request.args.get("accent", "")
    if chosen is None or not branding.HEX_COLOUR.match(accent):
        abort(404)
    if not branding.passes(accent.lower(), chosen.background):
        abort(404)
    body = (
        f".brand-preview {{ {accent_properties(accent.lower())} "
        f"--preview-background: {chosen.background}; }}\n"
    )
    response = Response(body)
    response.mimetype = "text/css"
    return response


def init_app(app: Flask) -> None:
    def allow_a_logo_upload() -> None:
        # Before any other hook reads the body: the app's limit is far below a logo's.
        if request.endpoint == LOGO_ENDPOINT:
            request.max_content_length = UPLOAD_LIMIT

    app.before_request_funcs.setdefault(None, []).insert(0, allow_a_logo_upload)
