"""Chain three Seedream models: make a scene from text, place a product photo in it, then make variants of the result.

1. ``scene``: Seedream 4.5 text to image (``seedream/4.5-text-to-image``) makes an empty scene.
2. ``place``: Seedream 5.0 Lite image to image (``seedream/5-lite-image-to-image``) puts the product photo into it:
   its ``image_urls`` are the scene's result URL (pulled from XCom ``result_urls``) and the product photo.
3. ``variants``: Seedream 4.0 edit (``bytedance/seedream-v4-edit``) makes two colour variants of the placed product
   in one task (``max_images=2``), shaped by ``image_size``/``image_resolution`` (4.0's fields, not 4.5's).

Each operator waits in the triggerer (``deferrable=True``) and stores its images under ``output_path`` before kie's
temporary links expire; ``report`` says which model made which stored file.

Settings come from the environment so that the same file runs against kie.ai or the project's emulator
(``make demo`` sets them): ``SEEDREAM_EXAMPLE_IMAGE_URL`` (the product photo: a URL, a local path or an object
storage URI), ``SEEDREAM_EXAMPLE_OUTPUT_DIR``, ``SEEDREAM_EXAMPLE_POLL_INTERVAL``.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import dag, task

from airflow_provider_seedream.operators.seedream import SeedreamEditOperator, SeedreamTextToImageOperator

PRODUCT_IMAGE = os.environ.get(
    "SEEDREAM_EXAMPLE_IMAGE_URL", "https://static.aiquickdraw.com/tools/example/1764851484363_ScV1s2aq.webp"
)
OUTPUT_DIR = os.environ.get("SEEDREAM_EXAMPLE_OUTPUT_DIR", "/tmp/seedream-example")
POLL_INTERVAL = float(os.environ.get("SEEDREAM_EXAMPLE_POLL_INTERVAL", "5"))

# What each step waits with: in the triggerer, results stored as soon as the task succeeds.
WAIT = {"wait_for_completion": True, "deferrable": True, "poll_interval": POLL_INTERVAL, "output_path": OUTPUT_DIR,
        "retries": 2}  # a retry re-attaches to the task its previous try paid for


@dag(
    dag_id="example_seedream_chain",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["seedream", "example"],
)
def example_seedream_chain():
    scene = SeedreamTextToImageOperator(
        task_id="scene",
        prompt="An empty white marble kitchen counter by a window, soft morning light, product photography",
        aspect_ratio="4:3",
        **WAIT,
    )
    place = SeedreamEditOperator(
        task_id="place",
        model="seedream/5-lite-image-to-image",
        prompt="Place the product from the second image on the counter in the first image, with a soft shadow",
        image_urls=["{{ ti.xcom_pull(task_ids='scene', key='result_urls')[0] }}", PRODUCT_IMAGE],
        aspect_ratio="4:3",
        **WAIT,
    )
    variants = SeedreamEditOperator(
        task_id="variants",
        model="bytedance/seedream-v4-edit",
        prompt="Make 2 images of this scene: the product in red, then the product in green",
        image_urls=["{{ ti.xcom_pull(task_ids='place', key='result_urls')[0] }}"],
        image_size="landscape_4_3",
        image_resolution="2K",
        max_images=2,
        seed=7,
        **WAIT,
    )

    @task
    def report(**context) -> dict[str, list[str]]:
        """Say which model made which stored image (each operator pushed its files to XCom ``stored_images``)."""
        made = {}
        for operator in (scene, place, variants):
            stored = context["ti"].xcom_pull(task_ids=operator.task_id, key="stored_images") or []
            made[operator.task_id] = stored
            for uri in stored:
                print(f"Image stored by {operator.task_id} ({operator.model}): {uri}")
        return made

    scene >> place >> variants >> report()


example_seedream_chain()
