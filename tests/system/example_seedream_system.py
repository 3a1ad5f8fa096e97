"""System test DAG: one cheap Seedream 4.5 edit on kie.ai, end to end, and the credits it cost.

It reads the account's balance, submits one edit of one input image at ``quality="basic"``, waits for it in the
triggerer and stores the result under ``output_path``, checks the stored image, then reads the balance again and
prints what the edit spent::

    Seedream credits spent: 6.5 (balance 1000 before the edit, 993.5 after)

``tests/system/test_seedream_system_live.py`` runs it on the live kie.ai when ``SEEDREAM_SYSTEM_API_KEY`` is set
(``pytest -m system tests/system``); ``tests/test_system_dag.py`` runs it against the emulator in every ``make test``,
so it is never dead code. It is also an ordinary DAG: copy it into a DAGs folder and trigger it with a
``seedream_default`` connection holding your key. Other work on the same key between the two balance readings counts
in the printed difference.

Settings from the environment: ``SEEDREAM_SYSTEM_IMAGE_URL`` (the input image), ``SEEDREAM_SYSTEM_OUTPUT_DIR`` (a local
path or an object storage URI), ``SEEDREAM_SYSTEM_POLL_INTERVAL`` (seconds).
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import ObjectStoragePath, XComArg, dag, task

from airflow_provider_seedream.hooks.seedream import SeedreamHook
from airflow_provider_seedream.operators.seedream import SeedreamEditOperator

DAG_ID = "example_seedream_system"
#: kie's own sample input for the Seedream 4.5 edit model (docs.kie.ai/market/seedream/4-5-edit).
IMAGE_URL = os.environ.get(
    "SEEDREAM_SYSTEM_IMAGE_URL", "https://static.aiquickdraw.com/tools/example/1764851484363_ScV1s2aq.webp"
)
OUTPUT_DIR = os.environ.get("SEEDREAM_SYSTEM_OUTPUT_DIR", "/tmp/seedream-system")
POLL_INTERVAL = float(os.environ.get("SEEDREAM_SYSTEM_POLL_INTERVAL", "5"))


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["seedream", "system"],
)
def example_seedream_system():
    @task
    def balance_before() -> float:
        """Read the balance before anything is spent (the credit endpoint is free)."""
        balance = SeedreamHook().get_credits()
        print(f"Seedream credit balance before the edit: {balance:g}")
        return balance

    # One input image, basic quality, 1:1: the cheapest edit there is. No retries: a system test should fail loudly
    # (a retry would re-attach to the same kie task and not pay twice, but it would hide a first failure).
    edit = SeedreamEditOperator(
        task_id="edit",
        prompt="Put the product on a white marble table in soft morning light",
        image_urls=[IMAGE_URL],
        aspect_ratio="1:1",
        quality="basic",
        wait_for_completion=True,
        deferrable=True,  # the live async path too: the trigger's polls over TLS, then the resume that stores
        poll_interval=POLL_INTERVAL,
        timeout=15 * 60,
        output_path=OUTPUT_DIR,
        retries=0,
    )

    @task
    def check_stored(stored_images: list[str]) -> list[str]:
        """Fail unless the edit stored at least one non-empty image under ``output_path``."""
        if not stored_images:
            raise ValueError("the edit stored no image")
        for uri in stored_images:
            path = ObjectStoragePath(uri)
            if not path.exists() or path.stat().st_size == 0:
                raise ValueError(f"the stored image {uri} is missing or empty")
            print(f"Edited image stored: {uri}")
        return stored_images

    @task
    def credits_spent(before: float) -> float:
        """Read the balance again and print what the edit cost."""
        after = SeedreamHook().get_credits()
        spent = round(before - after, 6)
        print(f"Seedream credits spent: {spent:g} (balance {before:g} before the edit, {after:g} after)")
        return spent

    before = balance_before()
    before >> edit
    check_stored(XComArg(edit, key="stored_images")) >> credits_spent(before)


example_seedream_system()
