"""`bookwell serve --certfile F --keyfile K`: the pair is checked before anything starts, and
whatever is wrong with it is one line (gunicorn would find out only in each worker, as a
traceback, while its master kept retrying)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bookwell.core.cli.root import check_tls_files, main, served_base_url
from bookwell.core.testing import self_signed_certificate


@pytest.fixture
def pair(tmp_path):
    return self_signed_certificate(tmp_path / "tls")


def refusal(tmp_path, *arguments: str) -> list[str]:
    result = CliRunner().invoke(
        main, ["--instance", str(tmp_path / "instance"), "serve", "--port", "1", *arguments]
    )
    assert result.exit_code == 1, result.output
    assert "serving on" not in result.output
    return result.output.strip().splitlines()


def test_a_good_pair_is_taken(pair):
    cert, key = pair
    assert check_tls_files(str(cert), str(key)) == (str(cert), str(key))
    assert check_tls_files(None, None) is None


@pytest.mark.parametrize("given", ["--certfile", "--keyfile"])
def test_one_without_the_other_is_refused(tmp_path, pair, given):
    path = pair[0] if given == "--certfile" else pair[1]
    assert refusal(tmp_path, given, str(path)) == [
        "Error: --certfile and --keyfile go together: give both, or neither"
    ]


def test_a_missing_file_is_named(tmp_path, pair):
    missing = tmp_path / "nowhere.pem"
    assert refusal(tmp_path, "--certfile", str(missing), "--keyfile", str(pair[1])) == [
        f"Error: --certfile {missing}: no such file"
    ]
    assert refusal(tmp_path, "--certfile", str(pair[0]), "--keyfile", str(missing)) == [
        f"Error: --keyfile {missing}: no such file"
    ]


def test_a_folder_is_not_a_file(tmp_path, pair):
    assert refusal(tmp_path, "--certfile", str(tmp_path), "--keyfile", str(pair[1])) == [
        f"Error: --certfile {tmp_path}: a folder, not a file"
    ]


def test_files_that_are_not_a_certificate_and_its_key_are_refused(tmp_path, pair):
    cert, key = pair
    other_cert, other_key = self_signed_certificate(tmp_path / "other")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    for certfile, keyfile in ((garbage, key), (cert, garbage), (cert, other_key), (key, cert)):
        (line,) = refusal(tmp_path, "--certfile", str(certfile), "--keyfile", str(keyfile))
        assert line.startswith(
            f"Error: cannot serve HTTPS with --certfile {certfile} and --keyfile {keyfile}: "
            "they are not a PEM certificate and its private key ("
        ), line
    assert other_cert.exists()


def test_a_key_with_a_passphrase_is_refused_without_asking_for_it(tmp_path):
    cert, key = self_signed_certificate(tmp_path / "locked", passphrase=b"secret phrase")
    assert refusal(tmp_path, "--certfile", str(cert), "--keyfile", str(key)) == [
        f"Error: --keyfile {key}: the key has a passphrase; give an unencrypted key, "
        "readable by this user only"
    ]


def test_links_in_mail_point_to_https_when_serving_it(tmp_path, monkeypatch):
    monkeypatch.delenv("BOOKWELL_BASE_URL", raising=False)
    instance = str(tmp_path / "instance")
    assert served_base_url(instance, "0.0.0.0", 8443, "https") == "https://127.0.0.1:8443"
    assert served_base_url(instance, "127.0.0.1", 8000) == "http://127.0.0.1:8000"
    monkeypatch.setenv("BOOKWELL_BASE_URL", "https://book.example.com")
    assert served_base_url(instance, "0.0.0.0", 8443, "https") is None
