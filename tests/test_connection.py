"""Table tests of the connection: base URLs, the key, the extras and their bounds."""

from __future__ import annotations

import pytest

from airflow_provider_seedream import connection
from airflow_provider_seedream import exceptions as exc


# ------------------------------------------------------------------------------------------------------------- settings
@pytest.mark.parametrize(
    "host, port, expected",
    [
        (None, None, "https://api.kie.ai"),
        ("", None, "https://api.kie.ai"),
        ("api.kie.ai", None, "https://api.kie.ai"),
        ("https://api.kie.ai/", None, "https://api.kie.ai"),
        ("http://127.0.0.1:8089", None, "http://127.0.0.1:8089"),
        ("http://localhost", 9000, "http://localhost:9000"),
        ("http://[::1]:8089", None, "http://[::1]:8089"),
        ("https://proxy.example.com/kie/", None, "https://proxy.example.com/kie"),
    ],
)
def test_base_url_normalisation(host, port, expected):
    s = connection.settings_from_connection(conn_id="c", host=host, password="k", extra={}, port=port)
    assert s.base_url == expected


@pytest.mark.parametrize("host", ["http://api.kie.ai", "http://10.0.0.5:8089", "http://example.com"])
def test_key_never_goes_over_plain_http_to_a_remote_host(host):
    with pytest.raises(exc.SeedreamValidationError, match="plain http is only allowed to a loopback host"):
        connection.settings_from_connection(conn_id="c", host=host, password="k", extra={})


def test_missing_key_is_an_auth_error_naming_the_connection():
    with pytest.raises(exc.SeedreamAuthError, match="'my_conn' has no API key"):
        connection.settings_from_connection(conn_id="my_conn", host=None, password=None, extra={})


@pytest.mark.parametrize("rate", [0, 11, 10, 9.5, "fast", -1])
def test_bad_poll_rate(rate):
    with pytest.raises(exc.SeedreamValidationError, match="extra.polls_per_second"):
        connection.settings_from_connection(conn_id="c", host=None, password="k", extra={"polls_per_second": rate})


@pytest.mark.parametrize("timeout", [0, -1, 601, "slow"])
def test_bad_timeout(timeout):
    with pytest.raises(exc.SeedreamValidationError, match="extra.timeout"):
        connection.settings_from_connection(conn_id="c", host=None, password="k", extra={"timeout": timeout})


@pytest.mark.parametrize("typical", [0, -5, 3601, "long"])
def test_bad_typical_run(typical):
    with pytest.raises(exc.SeedreamValidationError, match="extra.typical_run_seconds"):
        connection.settings_from_connection(conn_id="c", host=None, password="k", extra={"typical_run_seconds": typical})


def test_typical_run_extra_is_read():
    read = connection.settings_from_connection
    assert read(conn_id="c", host=None, password="k", extra={}).typical_run_seconds == 20.0
    assert read(conn_id="c", host=None, password="k", extra={"typical_run_seconds": "45"}).typical_run_seconds == 45.0


def test_timeout_extra_is_read():
    assert connection.settings_from_connection(conn_id="c", host=None, password="k", extra={}).timeout == 30.0
    assert connection.settings_from_connection(conn_id="c", host=None, password="k", extra={"timeout": "90"}).timeout == 90.0


@pytest.mark.parametrize("empty", [None, "", "  "])
def test_empty_optional_extras_mean_the_defaults(empty):
    """The connection form stores an optional field left empty as null or an empty string."""
    extra = {"timeout": empty, "polls_per_second": empty, "upload_base_url": empty, "typical_run_seconds": empty}
    s = connection.settings_from_connection(conn_id="c", host=None, password="k", extra=extra)
    assert (s.timeout, s.polls_per_second, s.upload_base_url, s.typical_run_seconds) == (
        30.0, 8.0, "https://kieai.redpandaai.co", 20.0)


def test_settings_repr_hides_the_key():
    s = connection.settings_from_connection(conn_id="c", host=None, password="sekrit-123", extra={})
    assert "sekrit-123" not in repr(s)
    assert "sekrit-123" not in s.budget_key()
    assert s.headers["Authorization"] == "Bearer sekrit-123"


def test_loopback_detection():
    assert connection.is_loopback_host("localhost") and connection.is_loopback_host("127.0.0.2") and connection.is_loopback_host("::1")
    assert not connection.is_loopback_host("10.0.0.1") and not connection.is_loopback_host("example.com")
    assert not connection.is_loopback_host(None)
