"""``bookwell themes list`` and ``bookwell tenants set SLUG --name/--timezone/.../--theme``: the
business's settings from the command line, validated as the staff settings page validates them."""

import json

from sqlalchemy import select

from bookwell.core.storage import db
from bookwell.core.storage.models import AuditEntry, Tenant


def stored(app, slug="salon"):
    with db.fresh_session(app) as session:
        return session.scalar(select(Tenant).where(Tenant.slug == slug))


def test_themes_list_names_every_installed_theme(bookwell_cli):
    listed = bookwell_cli("themes", "list", "--json")
    assert listed.exit_code == 0, listed.output
    themes = json.loads(listed.output)
    assert {"name": "default", "title": "Default", "source": "built-in"} in themes
    assert all(set(theme) == {"name", "title", "source"} for theme in themes)
    assert [theme["name"] for theme in themes] == sorted(theme["name"] for theme in themes)

    plain = bookwell_cli("themes", "list")
    assert plain.exit_code == 0 and "default  Default  (built-in)" in plain.output


def test_tenants_set_changes_the_details_given_and_only_those(app, tenant, bookwell_cli):
    before = stored(app)
    done = bookwell_cli(
        "tenants", "set", "salon", "--name", "Salon Rose", "--timezone", "America/New_York",
        "--language", "fr", "--currency", "cad", "--phone", "+1 212 555 0100",
        "--address", "1 Main St\nNew York", "--email", "desk@rose.example", "--theme", "default",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "salon: name Salon Rose (was " in done.output
    assert "salon: timezone America/New_York (was Europe/Paris)" in done.output
    assert "salon: currency CAD (was EUR)" in done.output
    assert "salon: theme already default; nothing changed" in done.output
    after = stored(app)
    assert (after.name, after.timezone, after.language, after.currency) == (
        "Salon Rose", "America/New_York", "fr", "CAD",
    )  # fmt: skip
    assert (after.phone, after.address, after.contact_email) == (
        "+1 212 555 0100", "1 Main St\nNew York", "desk@rose.example",
    )  # fmt: skip
    assert after.client_accounts == before.client_accounts

    only_phone = bookwell_cli("tenants", "set", "salon", "--phone", "+1 212 555 0199")
    assert only_phone.exit_code == 0, only_phone.output
    again = stored(app)
    assert again.phone == "+1 212 555 0199" and again.name == "Salon Rose"
    assert again.address == "1 Main St\nNew York" and again.timezone == "America/New_York"

    with db.fresh_session(app) as session:
        changes = session.scalars(
            select(AuditEntry.actor).where(AuditEntry.action == "business.updated")
        ).all()
    assert changes == ["cli", "cli"]


def test_tenants_set_refuses_bad_values_and_changes_nothing(app, tenant, bookwell_cli):
    before = stored(app)
    for arguments, expected in [
        (["--timezone", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
        (["--currency", "XYZW"], "not an ISO 4217 currency code"),
        (["--language", "de"], "Invalid value for '--language'"),
        (["--theme", "neon"], "no theme 'neon' is installed"),
        (["--name", ""], "name"),
        (["--email", "not-an-address"], "contact_email"),
        (["--name", "Salon\u202eevil"], "--name"),
        (["--name", "New", "--timezone", "Nowhere/Else"], "unknown time zone"),
    ]:
        refused = bookwell_cli("tenants", "set", "salon", *arguments)
        assert refused.exit_code != 0, (arguments, refused.output)
        assert expected in refused.output, (arguments, refused.output)
        assert "Traceback" not in refused.output
    after = stored(app)
    assert (after.name, after.timezone, after.currency, after.contact_email, after.theme) == (
        before.name, before.timezone, before.currency, before.contact_email, before.theme,
    )  # fmt: skip

    nothing = bookwell_cli("tenants", "set", "salon")
    assert nothing.exit_code == 2 and "nothing to set" in nothing.output
    unknown = bookwell_cli("tenants", "set", "nowhere", "--name", "X")
    assert unknown.exit_code == 1 and "no tenant with the slug 'nowhere'" in unknown.output
