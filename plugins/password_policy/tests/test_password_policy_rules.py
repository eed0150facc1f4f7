"""The password rules, through the doors a password is set by: the API's sign-up and password
change, the sign-up page, and an operator's ``bookwell users create``."""

from datetime import UTC, datetime

import pytest

from bookwell.core.testing import STAFF_PASSWORD, InvalidSettings, create_user, csrf_token_of
from bookwell.hooks import Context, TenantInfo, UserInfo
from bookwell.plugins import password_policy
from bookwell.plugins.password_policy import rules

GOOD = "plum orchard under snow"  # 23 characters, no class forced, nothing personal


@pytest.fixture
def accounts_on(bookwell_cli, tenant):
    result = bookwell_cli("tenants", "set", tenant.slug, "--client-accounts")
    assert result.exit_code == 0, result.output


def sign_up(app, password, email="ann@example.com", name="Ann Smith"):
    body = {"name": name, "email": email, "password": password}
    return app.test_client().post("/api/v1/tenants/salon/clients", json=body)


def refused_messages(response):
    assert response.status_code == 422, response.json
    return response.json["error"]["fields"]["password"]


def test_a_good_password_is_accepted(app, enable_plugin, accounts_on):
    enable_plugin("password_policy")
    assert sign_up(app, GOOD).status_code == 201


def test_too_short_is_refused(app, enable_plugin, accounts_on):
    enable_plugin("password_policy")
    assert refused_messages(sign_up(app, "plum orchard")) == [
        "This password is not accepted: Use at least 15 characters."
    ]
    enable_plugin("password_policy", min_length=12)
    assert sign_up(app, "plum orchard").status_code == 201


def test_sixty_four_characters_and_more_are_allowed(app, enable_plugin, accounts_on):
    enable_plugin("password_policy", min_length=64)
    long = "a walk along the river on a grey morning, with bread and cheese!"
    assert len(long) == 64
    assert sign_up(app, long).status_code == 201
    assert sign_up(app, long * 4, email="bob@example.com").status_code == 201


@pytest.mark.parametrize(
    ("setting", "message", "passing"),
    [
        ("require_upper", "Use at least one capital letter.", "Plum orchard under snow"),
        ("require_lower", "Use at least one lower-case letter.", "PLUM ORCHARD UNDEr SNOW"),
        ("require_digit", "Use at least one digit.", "plum orchard under 2 snows"),
        ("require_symbol", "Use at least one symbol, such as ! or #.", "plum orchard, under snow"),
    ],
)
def test_each_character_class_when_switched_on(
    app, enable_plugin, accounts_on, setting, message, passing
):
    enable_plugin("password_policy", **{setting: True})
    failing = GOOD.upper() if setting == "require_lower" else GOOD
    assert message in refused_messages(sign_up(app, failing))[0]
    assert sign_up(app, passing).status_code == 201


def test_character_classes_are_off_by_default_and_say_why(app, enable_plugin, accounts_on):
    settings = enable_plugin("password_policy")
    assert not any(settings[key] for key in rules_classes())
    for setting in password_policy.MANIFEST.settings:
        if setting.key in rules_classes():
            assert "NIST SP 800-63B" in setting.help and "OWASP ASVS" in setting.help
    assert sign_up(app, "plum orchard under snow").status_code == 201


def rules_classes():
    return ("require_upper", "require_lower", "require_digit", "require_symbol")


def test_a_common_password_is_refused_in_any_case(app, enable_plugin, accounts_on):
    enable_plugin("password_policy", min_length=8)
    for typed in ("baseball1", "BaseBall1", "BASEBALL1"):
        assert "most common passwords" in refused_messages(sign_up(app, typed))[0], typed
    enable_plugin("password_policy", min_length=8, refuse_common=False)
    assert sign_up(app, "BaseBall1").status_code == 201


def test_the_shipped_list_is_large():
    listed = rules.common_passwords()
    assert len(listed) >= 20_000
    assert "password" in listed and "trustno1" in listed


def test_the_e_mail_name_and_business_name_are_refused(app, enable_plugin, accounts_on):
    enable_plugin("password_policy")
    for password, message in (
        ("my annalise password!", "Do not use your e-mail address in it."),
        ("smith and wesson forever", "Do not use your name in it."),
        ("my favourite SALON in paris", "Do not use the business's name (Salon) in it."),
    ):
        answer = sign_up(app, password, email="annalise@example.com", name="Ann Smith")
        assert message in refused_messages(answer)[0], password
    # Name parts shorter than three characters match too much by chance: "Al" is no rule.
    assert sign_up(app, "always plum orchards", email="jo@example.com", name="Al Jo").status_code


def test_a_refusal_lists_every_rule_broken(app, enable_plugin, accounts_on):
    enable_plugin("password_policy", min_length=20, require_digit=True, require_symbol=True)
    answer = sign_up(app, "AnnSalon", email="ann@example.com", name="Ann Smith")
    message = refused_messages(answer)[0]
    for rule in (
        "Use at least 20 characters.",
        "Use at least one digit.",
        "Use at least one symbol",
        "Do not use your e-mail address in it.",
        "Do not use your name in it.",
        "Do not use the business's name (Salon) in it.",
    ):
        assert rule in message
    refusal = answer.json["error"]
    assert refusal["message"] == "The password does not meet the rules."


def test_the_refusal_carries_the_list_in_its_details():
    ctx = Context(
        tenant=TenantInfo(1, "salon", "Salon", "Europe/Paris"),
        now=datetime(2027, 3, 1, tzinfo=UTC),
        actor=UserInfo(0, "ann@example.com", "Ann", "client", 1),
    )
    settings = {key.key: key.default for key in password_policy.MANIFEST.settings}
    refusal = password_policy.before_password_set(ctx, settings, "password")
    assert refusal.code == "password_rejected" and refusal.field == "password"
    assert refusal.details["broken"] == ["min_length", "refuse_common"]
    assert refusal.details["messages"] == [
        "Use at least 15 characters.",
        "It is one of the most common passwords: choose another.",
    ]


def test_the_sign_up_page_shows_every_rule_broken(app, enable_plugin, accounts_on):
    enable_plugin("password_policy")
    browser = app.test_client()
    form = browser.get("/book/salon/account/register")
    answer = browser.post(
        "/book/salon/account/register",
        data={
            "csrf_token": csrf_token_of(form),
            "name": "Ann Smith",
            "email": "ann@example.com",
            "password": "Smith123",
        },
    )
    assert answer.status_code == 422
    assert "Use at least 15 characters." in answer.text
    assert "Do not use your name in it." in answer.text


def test_a_staff_password_change_through_the_api(app, enable_plugin, owner):
    enable_plugin("password_policy")
    change = {"current_password": STAFF_PASSWORD, "new_password": "owner of the salon!!"}
    answer = owner.api.post("/api/v1/auth/password", json=change)
    assert answer.status_code == 422, answer.json
    problems = answer.json["error"]["fields"]["new_password"]
    assert "Do not use your e-mail address in it." in problems[0]
    assert "Do not use the business's name (Salon) in it." in problems[0]
    change["new_password"] = GOOD
    assert owner.api.post("/api/v1/auth/password", json=change).status_code == 200


def test_only_the_chosen_roles_are_held_to_the_rules(app, enable_plugin, owner, accounts_on):
    enable_plugin("password_policy", roles=["owner", "manager"])
    assert sign_up(app, "short one").status_code == 201  # a client: not covered
    change = {"current_password": STAFF_PASSWORD, "new_password": "short one"}
    assert owner.api.post("/api/v1/auth/password", json=change).status_code == 422


def test_a_new_staff_account_is_held_to_the_rules(app, tenant, clock, enable_plugin):
    enable_plugin("password_policy")
    with app.app_context(), pytest.raises(ValueError, match="Use at least 15 characters."):
        create_user(
            app,
            tenant_id=tenant.tenant_id,
            email="bea@example.com",
            role="staff",
            password="bea is here",  # noqa: S106 - a password refused on purpose
            now=clock(),
        )


def test_the_rules_in_words():
    settings = {key.key: key.default for key in password_policy.MANIFEST.settings}
    tenant = TenantInfo(1, "salon", "Salon", "Europe/Paris")
    signing_up = Context(tenant=tenant, now=datetime(2027, 3, 1, tzinfo=UTC))
    words = password_policy.password_rules(signing_up, settings)
    assert words[0].startswith("At least 15 characters")
    assert "Not one of the 30,000 most common passwords." in words
    assert "Without your e-mail address, your name or the business's name in it." in words
    strict = {**settings, "require_upper": True, "require_digit": True}
    assert "At least a capital letter and a digit." in password_policy.password_rules(
        signing_up, strict
    )
    staff = UserInfo(3, "staff@example.com", "Staff", "staff", 1)
    uncovered = Context(tenant=tenant, now=signing_up.now, actor=staff)
    assert password_policy.password_rules(uncovered, {**settings, "roles": ["client"]}) is None


def test_a_crash_of_the_rules_refuses_the_password(app, enable_plugin, accounts_on, monkeypatch):
    enable_plugin("password_policy")

    def broken(*args, **kwargs):
        raise RuntimeError("the list is unreadable")

    monkeypatch.setattr(rules, "broken_rules", broken)
    answer = sign_up(app, GOOD)
    assert answer.status_code == 422
    assert answer.json["error"]["fields"]["password"]


def test_a_business_without_the_plugin_is_unaffected(app, accounts_on):
    assert sign_up(app, "password1").status_code == 201


def test_settings_below_their_floors_are_refused(enable_plugin):
    with pytest.raises(InvalidSettings) as short:
        enable_plugin("password_policy", min_length=7)
    assert "min_length" in short.value.fields
    with pytest.raises(InvalidSettings) as few:
        enable_plugin("password_policy", max_attempts=2)
    assert "max_attempts" in few.value.fields
    with pytest.raises(InvalidSettings):
        enable_plugin("password_policy", roles=["owner", "janitor"])
    assert enable_plugin("password_policy", min_length=8, max_attempts=3)["min_length"] == 8


def test_a_business_name_of_several_words_is_found_whatever_joins_them():
    from bookwell.plugins.password_policy.rules import _holds_business_name, comparable

    for password in ("chez marie rocks", "CHEZ-MARIE rocks", "chez_marie rocks", "chezmarie!"):
        assert _holds_business_name("Chez Marie", comparable(password)), password
    assert not _holds_business_name("Chez Marie", comparable("cheese maries rock"))
