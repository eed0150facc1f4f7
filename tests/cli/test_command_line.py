"""What an operator meets first on the command line: a mistyped instance folder, a command run
before `init`, an address that could never log in, and help texts naming the variables that
are really read."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

import bookwell.core
from bookwell.core.cli.root import main
from bookwell.core.foundation import config
from bookwell.core.storage import db
from bookwell.core.storage.models import User
from bookwell.core.testing import STAFF_PASSWORD, api_login, page_login

REPOSITORY = Path(__file__).resolve().parents[2]


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


@pytest.fixture
def run(tmp_path, database_url, monkeypatch):
    """``bookwell --instance TMP ...`` in this process, on the test's database."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    for variable in ("BOOKWELL_SECRET_KEY", "BOOKWELL_INSTANCE"):
        monkeypatch.delenv(variable, raising=False)
    instance = tmp_path / "instance"

    def invoke(*args: str, input: str | None = None):
        return CliRunner().invoke(main, ["--instance", str(instance), *args], input=input)

    return invoke


# --- a missing instance folder --------------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [
        ("tenants", "create", "salon", "--name", "Salon", "--timezone", "UTC"),
        ("users", "create", "--support", "--email", "a@example.com", "--password-stdin"),
        ("tokens", "revoke", "abcdef"),
        ("tick",),
        ("worker", "--burst"),
        ("mail", "status"),
    ],
)
def test_a_missing_instance_folder_is_one_line_and_is_not_created(tmp_path, monkeypatch, arguments):
    for variable in (*config.ENVIRONMENT_KEYS, "BOOKWELL_INSTANCE"):
        monkeypatch.delenv(variable, raising=False)
    missing = tmp_path / "mistyped"
    result = CliRunner().invoke(main, ["--instance", str(missing), *arguments], input="x\n")
    assert result.exit_code == 1
    assert error_lines(result.output) == [
        f"Error: no instance folder at {missing}: create it with "
        f"`bookwell --instance {missing} init`"
    ]
    assert not missing.exists()


def test_init_and_demo_still_create_the_folder(tmp_path, monkeypatch):
    for variable in (*config.ENVIRONMENT_KEYS, "BOOKWELL_INSTANCE"):
        monkeypatch.delenv(variable, raising=False)
    for command, folder in (("init", tmp_path / "a"), ("demo", tmp_path / "b")):
        result = CliRunner().invoke(main, ["--instance", str(folder), command])
        assert result.exit_code == 0, result.output
        assert (folder / "config.toml").exists()


# --- commands run before `init` -------------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [
        ("users", "create", "--tenant", "salon", "--email", "a@example.com", "--role", "owner",
         "--password-stdin"),
        ("tokens", "create", "--tenant", "salon", "--email", "a@example.com"),
        ("tokens", "revoke", "abcdef"),
    ],
)
def test_user_commands_before_init_say_to_run_it(run, blank_database_url, monkeypatch, arguments):
    monkeypatch.setenv("DATABASE_URL", blank_database_url)  # no tables: `init` never ran
    result = run(*arguments, input=STAFF_PASSWORD + "\n")
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = error_lines(result.output)
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "run `bookwell init` first" in lines[0]


# --- one e-mail rule for creating an account and for logging in -----------------------------------


def create_owner(run, email: str):
    return run(
        "users", "create", "--tenant", "rival", "--email", email, "--role", "owner",
        "--password-stdin", input=STAFF_PASSWORD + "\n",
    )


@pytest.fixture
def rival(run):
    assert run("init").exit_code == 0
    created = run("tenants", "create", "rival", "--name", "Rival", "--timezone", "UTC")
    assert created.exit_code == 0, created.output
    return run


@pytest.mark.parametrize(
    "address",
    [
        "owner@rival.test",  # special-use names (RFC 6761): no mail is ever delivered there
        "owner@shop.local",
        "owner@rival.invalid",
        "owner@localhost",
        "owner@rival",
        "owner@@example.com",
        "o" * 250 + "@example.com",
    ],
)
def test_users_create_refuses_what_login_refuses(rival, make_app, address):
    result = create_owner(rival, address)
    assert result.exit_code == 1
    lines = error_lines(result.output)
    assert len(lines) == 1 and "is not an address one can log in with" in lines[0], result.output
    app = make_app()
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(User)) == 0
    # Login refuses the address for its form, before any account is looked for.
    answer = api_login(app, address, business="rival")
    assert answer.status_code == 422, answer.text
    assert "email" in answer.get_json()["error"]["fields"]
    page, _ = page_login(app, address, business="rival")
    assert page.status_code != 302


@pytest.mark.parametrize(
    "address", ["owner@salon.example", "Owner@Example.COM", "zoë.owner@example.org"]
)
def test_an_address_users_create_accepts_can_log_in_on_the_api_and_the_pages(
    rival, make_app, address
):
    result = create_owner(rival, address)
    assert result.exit_code == 0, result.output
    app = make_app()
    answer = api_login(app, address, business="rival")
    assert answer.status_code == 200, answer.text
    page, _ = page_login(app, address, business="rival")
    assert page.status_code == 302, page.text


# --- help texts name the variables that are read -------------------------------------------------

# An environment variable's shape; config keys (TICK_SECONDS) have it too, which is the point:
# help says BOOKWELL_TICK_SECONDS, the name an operator sets.
VARIABLE = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")
READ = [
    re.compile(r"os\.environ(?:\.get)?[\[(]\s*\"([A-Z][A-Z0-9_]+)\""),
    re.compile(r"envvar=\"([A-Z][A-Z0-9_]+)\""),
    re.compile(r"^[A-Z_]+_ENV = \"([A-Z][A-Z0-9_]+)\"", re.M),  # testing.POSTGRES_ENV
]


def variables_read() -> set[str]:
    """Every environment variable Bookwell reads: the config reader's, and those core reads
    itself (the instance folder, blocked plugins, the tests' PostgreSQL), and those the test
    suite reads (its Hypothesis profile)."""
    names = set(config.ENVIRONMENT_KEYS)
    sources = [*Path(bookwell.core.__file__).parent.rglob("*.py")]
    sources += Path(__file__).resolve().parent.parent.rglob("test_*.py")
    for source in sources:
        text = source.read_text(encoding="utf-8")
        for pattern in READ:
            names.update(pattern.findall(text))
    return names


def help_texts(command: click.Command, path: tuple[str, ...] = ("bookwell",)):
    """(command path, its whole --help) for core's commands, groups and subcommands alike."""
    with click.Context(command, info_name=" ".join(path)) as context:
        yield " ".join(path), command.get_help(context)
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):  # core's own, not plugins'
            yield from help_texts(sub, (*path, name))


def test_the_variables_read_are_found():
    found = variables_read()
    assert {"BOOKWELL_TICK_SECONDS", "BOOKWELL_INSTANCE", "BOOKWELL_DISABLED_PLUGINS"} <= found
    assert "TICK_SECONDS" not in found


def test_help_texts_name_only_variables_that_are_read():
    read = variables_read()
    unknown = {
        (path, name)
        for path, text in help_texts(main)
        for name in VARIABLE.findall(text)
        if name not in read
    }
    assert not unknown, f"help names variables nobody reads: {sorted(unknown)}"


def test_the_documents_name_only_bookwell_variables_that_are_read():
    read = variables_read()
    documents = [REPOSITORY / "README.md", *sorted((REPOSITORY / "docs").glob("*.md"))]
    unknown = {
        (document.name, name)
        for document in documents
        for name in re.findall(r"\bBOOKWELL_[A-Z0-9_]+\b", document.read_text(encoding="utf-8"))
        if name not in read
    }
    assert not unknown, f"documents name variables nobody reads: {sorted(unknown)}"
