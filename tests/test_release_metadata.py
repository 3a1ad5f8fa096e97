"""What a release states about itself: ``get_provider_info()`` and the hook's form metadata against the JSON schemas
the installed Airflow ships, and the changelog's version against the package's.

Airflow validates every provider's entry point against its runtime schema (``provider_info.schema.json``, relaxed:
only ``name`` and ``description`` are required) and a hook's ``get_ui_field_behaviour()`` against
``customized_form_field_behaviours.schema.json``. The stricter ``provider.yaml.schema.json`` is what the official
providers' metadata (from which their ``get_provider_info`` is generated) must pass: it refuses unknown keys, and from
Airflow 3.2 on it checks the shape of ``ui-field-behaviour`` and ``conn-fields``. It is checked too, with the three
fields only official providers carry (release state, versions, source date) filled in. Runs on every Airflow the
suite runs on; a schema this Airflow does not ship is skipped by name.
"""

from __future__ import annotations

import copy
import json
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import airflow_provider_seedream
from airflow_provider_seedream.get_provider_info import get_provider_info
from airflow_provider_seedream.hooks.seedream import SeedreamHook


def airflow_schema(name: str) -> dict[str, Any]:
    """The schema file ``name`` inside the installed ``airflow`` package, read as Airflow reads it; skip if absent."""
    resource = files("airflow").joinpath(name)
    if not resource.is_file():
        from airflow import __version__

        pytest.skip(f"Airflow {__version__} ships no {name}")
    return json.loads(resource.read_text())


def validator(name: str) -> Any:
    schema = airflow_schema(name)
    return jsonschema.validators.validator_for(schema)(schema)


def errors(check: jsonschema.protocols.Validator, document: Any) -> list[str]:
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in check.iter_errors(document)]


def as_official_metadata(info: dict[str, Any]) -> dict[str, Any]:
    """The provider info plus the fields only official providers' provider.yaml carries."""
    return {**info, "state": "ready", "source-date-epoch": 0, "versions": [airflow_provider_seedream.__version__]}


def test_provider_info_passes_the_runtime_schema_airflow_validates_entry_points_with():
    check = validator("provider_info.schema.json")
    assert errors(check, get_provider_info()) == []
    # The schema is relaxed, but not empty: it does refuse a broken info (so the pass above means something).
    broken = copy.deepcopy(get_provider_info())
    del broken["name"]
    broken["connection-types"][0].pop("hook-class-name")
    assert len(errors(check, broken)) == 2


def test_provider_info_passes_the_official_providers_metadata_schema():
    schema = airflow_schema("provider.yaml.schema.json")
    check = jsonschema.validators.validator_for(schema)(schema)
    info = get_provider_info()
    assert errors(check, as_official_metadata(info)) == []
    # Strict where the runtime schema is silent: a misspelt key is refused (snake_case instead of kebab-case).
    misspelt = {**info, "extra_links": info["extra-links"]}
    assert errors(check, as_official_metadata(misspelt))
    # The connection form's keys are described from Airflow 3.2 on (3.1 builds the form from the hook's methods).
    connection_keys = schema["properties"]["connection-types"]["items"]["properties"]
    if "ui-field-behaviour" in connection_keys:
        broken = copy.deepcopy(info)
        behaviour = broken["connection-types"][0]["ui-field-behaviour"]
        behaviour["hiddenFields"] = behaviour.pop("hidden-fields")
        assert errors(check, as_official_metadata(broken))


def test_the_hooks_form_behaviour_passes_airflows_form_schema():
    check = validator("customized_form_field_behaviours.schema.json")
    assert errors(check, SeedreamHook.get_ui_field_behaviour()) == []
    assert errors(check, {"relabeling": {}})  # hidden_fields is required: the schema can fail


def test_the_changelogs_newest_entry_is_the_packages_version():
    changelog = (Path(__file__).resolve().parent.parent / "CHANGELOG.md").read_text()
    versions = re.findall(r"^## \[(\d+\.\d+\.\d+[^\]]*)\]", changelog, flags=re.MULTILINE)
    assert versions, "CHANGELOG.md has no '## [x.y.z]' entry"
    assert versions[0] == airflow_provider_seedream.__version__
    assert re.search(rf"^\[{re.escape(versions[0])}\]: https://", changelog, flags=re.MULTILINE)  # its link
