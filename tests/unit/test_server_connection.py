"""Where the Prefect server is, its credentials, and that no form of a secret survives in a message."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest

from register.problems import Invalid
from register.server import Connection, connection_from_environment

KEY = "pnu_Sup3rSecretKeyThatMustNeverBePrinted"
AUTH = "admin:An0ther/Secret Passw0rd"
MULTI = "admin:first-line-secret\nsecond-line-secret"


@pytest.mark.parametrize("form", [
    KEY,
    AUTH,
    AUTH.partition(":")[2],
    quote(AUTH.partition(":")[2], safe=""),  # URL-encoded, as in a URL's userinfo
    base64.b64encode(AUTH.encode()).decode(),  # as the Basic header carries it
    base64.b64encode(AUTH.encode()).decode()[:14],  # a header the server cut short
    KEY[:9],  # an echo the server cut short
], ids=["key", "auth", "password", "url-encoded", "base64", "base64-cut", "key-cut"])
def test_every_form_of_a_secret_is_removed_from_a_server_message(form):
    connection = Connection("http://127.0.0.1:4200/api", api_key=KEY, auth_string=AUTH)
    text = connection.redact(f"the server said: you sent {form}... and then stopped")
    assert form not in text and "***" in text, text


def test_the_password_in_the_url_is_removed_whole_and_encoded():
    password = "p@ss/w:rd!"
    url = f"http://admin:{quote(password, safe='')}@prefect.example.com/api"
    connection = Connection(url)
    echoed = f"Authorization: Basic {base64.b64encode(f'admin:{password}'.encode()).decode()}; {password}; {url}"
    text = connection.redact(echoed)
    assert password not in text and quote(password, safe="") not in text
    assert base64.b64encode(f"admin:{password}".encode()).decode() not in text
    assert connection.display_url == "http://prefect.example.com/api"


def test_each_line_of_a_multi_line_secret_is_removed():
    connection = Connection("http://127.0.0.1:4200/api", auth_string=MULTI)
    text = connection.redact("line one: first-line-secret / line two: second-line-secret")
    assert "first-line-secret" not in text and "second-line-secret" not in text, text


def test_the_environment_wins_over_the_active_profile(tmp_path):
    (tmp_path / "profiles.toml").write_text(
        'active = "cloud"\n[profiles.cloud]\nPREFECT_API_URL = "https://api.prefect.cloud/api/accounts/a/workspaces/w"\n'
        f'PREFECT_API_KEY = "{KEY}"\n[profiles.local]\nPREFECT_API_URL = "http://127.0.0.1:4200/api"\n')
    from_profile = connection_from_environment({"PREFECT_HOME": str(tmp_path)})
    assert from_profile.url == "https://api.prefect.cloud/api/accounts/a/workspaces/w"
    assert from_profile.api_key == KEY
    chosen = connection_from_environment({"PREFECT_HOME": str(tmp_path), "PREFECT_PROFILE": "local"})
    assert (chosen.url, chosen.api_key) == ("http://127.0.0.1:4200/api", None)
    env = connection_from_environment({"PREFECT_HOME": str(tmp_path), "PREFECT_API_URL": "http://h:1/api"})
    assert (env.url, env.api_key) == ("http://h:1/api", KEY)  # the key still comes from the profile


def test_without_a_url_anywhere_it_names_prefect_api_url(tmp_path):
    with pytest.raises(Invalid) as raised:
        connection_from_environment({"PREFECT_HOME": str(tmp_path)})
    assert "PREFECT_API_URL is not set" in str(raised.value)


@pytest.mark.parametrize("url", ["http://admin:s3cret-pass@[::1/api", "http://admin:s3cret-pass@host:99x/api",
                                 "ftp://admin:s3cret-pass@host/api"])
def test_a_url_that_cannot_be_read_is_an_error_that_does_not_print_it(tmp_path, url):
    with pytest.raises(Invalid) as raised:
        connection_from_environment({"PREFECT_HOME": str(tmp_path), "PREFECT_API_URL": url})
    assert "s3cret-pass" not in str(raised.value)
    assert "PREFECT_API_URL" in str(raised.value) and "[server-url]" in str(raised.value)
