"""Provider metadata read by Airflow's providers manager (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata: modules, the ``seedream`` connection type and its form, the extra links."""
    return {
        "package-name": "airflow-provider-seedream",
        "name": "Seedream (kie.ai)",
        "description": "Run ByteDance Seedream image models (4.5, 5.0 Lite, 4.0, 3.0: edits and text to image) on "
                       "kie.ai's Market API from Airflow.",
        "integrations": [
            {
                "integration-name": "Seedream",
                "external-doc-url": "https://docs.kie.ai/market/seedream/4-5-edit",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": "Seedream", "python-modules": ["airflow_provider_seedream.hooks.seedream"]}],
        "operators": [
            {"integration-name": "Seedream", "python-modules": ["airflow_provider_seedream.operators.seedream"]}
        ],
        "sensors": [{"integration-name": "Seedream", "python-modules": ["airflow_provider_seedream.sensors.seedream"]}],
        "triggers": [
            {"integration-name": "Seedream", "python-modules": ["airflow_provider_seedream.triggers.seedream"]}
        ],
        "connection-types": [
            {
                "connection-type": "seedream",
                "hook-class-name": "airflow_provider_seedream.hooks.seedream.SeedreamHook",
                "hook-name": "Seedream (kie.ai)",
                # Airflow 3.2+ builds the form from these keys without importing the hook (kebab-case matters).
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "login", "port"],
                    "relabeling": {"password": "API key", "host": "Base URL"},
                    "placeholders": {"host": "https://api.kie.ai", "password": "kie.ai API key"},
                },
                "conn-fields": {
                    "upload_base_url": {
                        "label": "Upload base URL",
                        "description": "kie.ai File Upload API host (default https://kieai.redpandaai.co)",
                        "schema": {"type": ["string", "null"]},
                    },
                    "polls_per_second": {
                        "label": "Status queries per second",
                        "description": "Poll budget per API key and triggerer process (kie allows 10; default 8)",
                        "schema": {"type": ["number", "null"]},
                    },
                    "timeout": {
                        "label": "Request timeout (s)",
                        "description": "Seconds to wait for one answer from kie.ai (default 30)",
                        "schema": {"type": ["number", "null"]},
                    },
                    "typical_run_seconds": {
                        "label": "Typical edit time (s)",
                        "description": "Median Seedream run time; orders status queries when the budget is scarce "
                        "(default 20)",
                        "schema": {"type": ["number", "null"]},
                    },
                    "max_download_bytes": {
                        "label": "Largest result image (bytes)",
                        "description": "Result images larger than this are not stored (default 209715200, 200 MiB)",
                        "schema": {"type": ["number", "null"]},
                    },
                    "download_timeout": {
                        "label": "Download time limit (s)",
                        "description": "Seconds one result image may take to download in all (default 300)",
                        "schema": {"type": ["number", "null"]},
                    },
                    "submits_per_10s": {
                        "label": "Submits per 10 s (this host)",
                        "description": "createTask calls this host's workers send per 10 s for the key (kie allows "
                        "20; default 20); lower it when hosts share a key",
                        "schema": {"type": ["number", "null"]},
                    },
                    "credits_per_image": {
                        "label": "Credits per image",
                        "description": "Price of one edit; a batch that would cost more than the balance fails "
                        "before its first submit (unset: no check)",
                        "schema": {"type": ["number", "null"]},
                    },
                },
            }
        ],
        # Airflow 3 computes the link on the worker (BaseOperatorLink.get_link at the end of each run); the listing
        # is for `airflow providers links` and for older cores that resolve link classes by name.
        "extra-links": ["airflow_provider_seedream.links.SeedreamResultImageLink"],
    }
