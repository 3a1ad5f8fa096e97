"""Registration: the entry point, what Airflow's providers manager reads, and the CLI listing."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from airflow_provider_seedream.get_provider_info import get_provider_info


def test_entry_point_points_at_provider_info():
    eps = [ep for ep in entry_points(group="apache_airflow_provider") if ep.value.startswith("airflow_provider_seedream")]
    assert len(eps) == 1
    assert eps[0].load()() == get_provider_info()


def test_providers_manager_sees_hook_and_connection_form():
    from airflow.providers_manager import ProvidersManager

    pm = ProvidersManager()
    assert "airflow-provider-seedream" in pm.providers
    hook = pm.hooks.get("seedream")
    assert hook is not None
    assert hook.hook_class_name == "airflow_provider_seedream.hooks.seedream.SeedreamHook"
    assert hook.connection_testable is True
    from airflow_provider_seedream.version_compat import AIRFLOW_V_3_2_PLUS

    if not AIRFLOW_V_3_2_PLUS:
        return  # 3.1 builds the form by importing the hook with FAB mocked: see the consistency test below
    behaviour = pm.field_behaviours["seedream"]
    assert set(behaviour["hidden_fields"]) == {"schema", "login", "port"}
    assert behaviour["relabeling"]["password"] == "API key"
    widgets = set(pm.connection_form_widgets)
    assert {f"extra__seedream__{name}" for name in ("upload_base_url", "polls_per_second", "timeout",
                                                    "typical_run_seconds")} <= widgets


def test_every_listed_module_imports():
    import importlib

    info = get_provider_info()
    for kind in ("hooks", "operators", "sensors", "triggers"):
        for entry in info[kind]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for link in info.get("extra-links", []):
        module, name = link.rsplit(".", 1)
        assert hasattr(importlib.import_module(module), name)


def test_airflow_providers_list_shows_the_provider():
    result = subprocess.run([sys.executable, "-m", "airflow", "providers", "list", "-o", "plain"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "airflow-provider-seedream" in result.stdout


#: A value each extra refuses, so a test can tell the extra is read (numbers must be positive numbers).
_REFUSED = {"upload_base_url": "ftp://files.example.com"}


def test_the_form_offers_exactly_the_extras_the_connection_reads():
    """Every extra field of the connection form is one ``settings_from_connection`` reads (a refused value fails
    naming it), and every extra it reads has a field: a user can set in the UI all that the provider reads."""
    from airflow_provider_seedream import connection

    fields = set(get_provider_info()["connection-types"][0]["conn-fields"])
    read = set()
    for name in sorted(fields | {"max_download_bytes", "download_timeout", "submits_per_10s", "credits_per_image",
                                 "not_an_extra"}):
        try:
            connection.settings_from_connection(conn_id="c", host=None, password="key",
                                                extra={name: _REFUSED.get(name, "-1")})
        except Exception as error:
            assert f"extra.{name}" in str(error), error
            read.add(name)
    assert "not_an_extra" not in read
    assert fields == read


def test_the_form_hides_and_relabels_on_every_airflow():
    """3.1 reads the hook's classmethods, 3.2+ the provider info: both show the key as "API key" and hide the rest."""
    from airflow_provider_seedream.hooks.seedream import SeedreamHook

    behaviour = SeedreamHook.get_ui_field_behaviour()
    assert set(behaviour["hidden_fields"]) == {"schema", "login", "port"}
    assert behaviour["relabeling"] == {"password": "API key", "host": "Base URL"}
    from airflow_provider_seedream.version_compat import AIRFLOW_V_3_2_PLUS

    if not AIRFLOW_V_3_2_PLUS:  # 3.1 builds the extra fields from the hook's widgets
        pytest.importorskip("wtforms")
        widgets = SeedreamHook.get_connection_form_widgets()
        assert set(widgets) == set(get_provider_info()["connection-types"][0]["conn-fields"])
