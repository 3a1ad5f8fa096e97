"""Edit one product photo with Seedream 4.5, wait for it in the triggerer, and keep the result.

``SeedreamEditOperator`` submits the edit and returns the kie task id; the deferrable ``SeedreamTaskSensor`` waits for
it without holding a worker slot and, with ``output_path``, stores every result image there before kie's temporary
links expire (streamed, size-checked, placed whole); a TaskFlow task reports where the images are.

Settings come from the environment so that the same file runs against kie.ai or the project's emulator
(``make demo`` sets them): ``SEEDREAM_EXAMPLE_IMAGE_URL``, ``SEEDREAM_EXAMPLE_OUTPUT_DIR``,
``SEEDREAM_EXAMPLE_POLL_INTERVAL``.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import Param, XComArg, dag, task

from airflow_provider_seedream.operators.seedream import SeedreamEditOperator
from airflow_provider_seedream.sensors.seedream import SeedreamTaskSensor

IMAGE_URL = os.environ.get(
    "SEEDREAM_EXAMPLE_IMAGE_URL", "https://static.aiquickdraw.com/tools/example/1764851484363_ScV1s2aq.webp"
)
OUTPUT_DIR = os.environ.get("SEEDREAM_EXAMPLE_OUTPUT_DIR", "/tmp/seedream-example")
POLL_INTERVAL = float(os.environ.get("SEEDREAM_EXAMPLE_POLL_INTERVAL", "5"))


@dag(
    dag_id="example_seedream_edit",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["seedream", "example"],
    params={
        "prompt": Param("Put the product on a white marble table in soft morning light", type="string",
                        minLength=1, maxLength=3000),
        "image_url": Param(IMAGE_URL, type="string"),
        "aspect_ratio": Param("1:1", enum=["1:1", "4:3", "3:4", "16:9", "9:16", "2:3", "3:2", "21:9"]),
        "quality": Param("basic", enum=["basic", "high"]),
    },
)
def example_seedream_edit():
    edit = SeedreamEditOperator(
        task_id="edit",
        prompt="{{ params.prompt }}",
        image_urls=["{{ params.image_url }}"],
        aspect_ratio="{{ params.aspect_ratio }}",
        quality="{{ params.quality }}",
    )

    wait = SeedreamTaskSensor(
        task_id="wait",
        seedream_task_id=edit.output,
        poke_interval=POLL_INTERVAL,
        timeout=30 * 60,
        output_path=OUTPUT_DIR,  # also s3://conn_id@bucket/prefix, gs://..., any ObjectStoragePath
        retries=2,  # a retry re-reads the same kie task and stores again: no new bill
    )

    @task
    def report(stored_images: list[str]) -> list[str]:
        """Say where the edited images are (the sensor pushed their URIs to XCom ``stored_images``)."""
        for uri in stored_images:
            print(f"Edited image stored: {uri}")
        return stored_images

    report(XComArg(wait, key="stored_images"))


example_seedream_edit()
