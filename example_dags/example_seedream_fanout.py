"""Edit several photos at once with dynamic task mapping: one Seedream task, and one deferred wait, per photo.

``SEEDREAM_EXAMPLE_IMAGE_URLS`` (comma-separated) lists the photos; ``make demo`` points it at the emulator's samples.
No pool is needed for kie's rate: every submit waits for its place in a pace shared by the host's workers (README,
"How the waits and the submits share kie's limits"; a pool bounds concurrency, it does not pace). For hundreds of
photos a night, ``SeedreamBatchEditOperator`` finishes closest to the account's pace (README, "A night's batch: which
layout").
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import dag, task

from airflow_provider_seedream.operators.seedream import SeedreamEditOperator
from airflow_provider_seedream.sensors.seedream import SeedreamTaskSensor

IMAGE_URLS = [
    url.strip()
    for url in os.environ.get(
        "SEEDREAM_EXAMPLE_IMAGE_URLS",
        "https://static.aiquickdraw.com/tools/example/1764851484363_ScV1s2aq.webp",
    ).split(",")
    if url.strip()
]
POLL_INTERVAL = float(os.environ.get("SEEDREAM_EXAMPLE_POLL_INTERVAL", "5"))


@dag(
    dag_id="example_seedream_fanout",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["seedream", "example"],
)
def example_seedream_fanout():
    @task
    def list_photos() -> list[list[str]]:
        """One edit per photo: each mapped edit gets a list holding one URL."""
        return [[url] for url in IMAGE_URLS]

    edits = SeedreamEditOperator.partial(
        task_id="edit",
        prompt="Remove the background and put the product on pure white, studio lighting",
        aspect_ratio="1:1",
        quality="basic",
    ).expand(image_urls=list_photos())

    waits = SeedreamTaskSensor.partial(
        task_id="wait",
        poke_interval=POLL_INTERVAL,
        timeout=30 * 60,
    ).expand(seedream_task_id=edits.output)

    @task
    def report(all_results: list[list[str]]) -> int:
        """Print every edited image's URL and return how many there are."""
        urls = [url for results in all_results for url in results]
        for url in urls:
            print(url)
        print(f"{len(urls)} edited image(s) from {len(all_results)} photo(s)")
        return len(urls)

    report(waits.output)


example_seedream_fanout()
