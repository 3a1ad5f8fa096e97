"""The DAG ``tests/test_lineage.py`` runs through ``dag.test()`` with the OpenLineage listener on.

One edit of a local photo and a web photo that waits (deferred) and stores its result, an edit that only submits and
a sensor that stores it, a batch of two edits, and an edit mapped over the two photos. Settings come from the
environment the test sets: ``SEEDREAM_LINEAGE_LOCAL_IMAGE``, ``SEEDREAM_LINEAGE_IMAGE_URL``,
``SEEDREAM_LINEAGE_OUTPUT``.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import dag

from airflow_provider_seedream.operators.seedream import SeedreamBatchEditOperator, SeedreamEditOperator
from airflow_provider_seedream.sensors.seedream import SeedreamTaskSensor

LOCAL_IMAGE = os.environ.get("SEEDREAM_LINEAGE_LOCAL_IMAGE", "/tmp/photo.png")
IMAGE_URL = os.environ.get("SEEDREAM_LINEAGE_IMAGE_URL", "https://example.com/photo.png")
OUTPUT = os.environ.get("SEEDREAM_LINEAGE_OUTPUT", "/tmp/seedream-lineage")
POLL = 0.2


@dag(dag_id="seedream_lineage", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def seedream_lineage():
    SeedreamEditOperator(
        task_id="edit",
        prompt="Put both products on one white marble table",
        image_urls=[LOCAL_IMAGE, IMAGE_URL],
        wait_for_completion=True,
        deferrable=True,
        poll_interval=POLL,
        output_path=OUTPUT,
    )

    submit = SeedreamEditOperator(task_id="submit", prompt="Soft morning light", image_urls=[IMAGE_URL])
    SeedreamTaskSensor(task_id="wait", seedream_task_id=submit.output, deferrable=False, poke_interval=POLL,
                       output_path=OUTPUT)

    SeedreamBatchEditOperator(
        task_id="batch",
        edits=[{"prompt": "A wooden background", "image_urls": [LOCAL_IMAGE]},
               {"prompt": "A slate background", "image_urls": [IMAGE_URL]}],
        deferrable=False,
        poll_interval=POLL,
        output_path=OUTPUT,
    )

    SeedreamEditOperator.partial(
        task_id="mapped",
        prompt="A linen background",
        wait_for_completion=True,
        deferrable=False,
        poll_interval=POLL,
        output_path=OUTPUT,
    ).expand(image_urls=[[LOCAL_IMAGE], [IMAGE_URL]])


seedream_lineage()
