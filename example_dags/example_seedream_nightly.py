"""A nightly product-photo pipeline: edit every photo in a folder (or bucket) and keep the results for good.

Every night at 02:00 UTC:

1. ``list_photos`` lists the JPEG/PNG/WebP files in ``SEEDREAM_NIGHTLY_INPUT`` (a local folder, or a bucket prefix
   such as ``s3://aws_default@product-photos/incoming``). The files are not public, and need not be: the edit
   operator checks each one and uploads it through kie's File Upload API right before submitting.
2. ``edit`` submits one Seedream edit per photo (dynamic task mapping) and returns at once.
3. ``store`` waits for each edit in the triggerer (no worker slot held) and streams its result image to
   ``SEEDREAM_NIGHTLY_OUTPUT/<date>/`` before kie's temporary link expires. It pushes the stored URIs to XCom
   (``stored_images``) and emits an event on the ``seedream_nightly_edits`` asset, so a DAG scheduled on that
   asset runs when new images land. The task's "Seedream result image" button opens the result.
4. ``publish`` gets the stored paths and writes ``manifest.json`` next to the images for whoever picks them up.

Settings come from the environment so that the same file runs against kie.ai or the project's emulator:
``SEEDREAM_NIGHTLY_INPUT``, ``SEEDREAM_NIGHTLY_OUTPUT``, ``SEEDREAM_EXAMPLE_POLL_INTERVAL``. The ``edit`` tasks need
no pool for kie's rate (the provider paces submits across the host's workers); when a night brings hundreds of
photos, ``SeedreamBatchEditOperator`` finishes closest to the account's pace (README, "A night's batch: which layout";
``example_seedream_batch.py`` is this night in one batch task).
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import Asset, dag, task

from airflow_provider_seedream.operators.seedream import SeedreamEditOperator
from airflow_provider_seedream.sensors.seedream import SeedreamTaskSensor

INPUT = os.environ.get("SEEDREAM_NIGHTLY_INPUT", "/tmp/seedream-nightly/photos")
OUTPUT = os.environ.get("SEEDREAM_NIGHTLY_OUTPUT", "file:///tmp/seedream-nightly/edited").rstrip("/")
if "://" not in OUTPUT:  # a local folder, relative or with ~: the URI the images and the manifest both go under
    OUTPUT = "file://" + os.path.abspath(os.path.expanduser(OUTPUT))
POLL_INTERVAL = float(os.environ.get("SEEDREAM_EXAMPLE_POLL_INTERVAL", "15"))
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")

EDITED = Asset("seedream_nightly_edits")


@dag(
    dag_id="example_seedream_nightly",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["seedream", "example"],
)
def example_seedream_nightly():
    @task
    def list_photos(folder: str) -> list[list[str]]:
        """Return one ``image_urls`` list per product photo found in ``folder`` (sorted, so runs are repeatable).

        A night without photos maps zero edits: the downstream tasks are skipped, nothing is paid for.
        """
        from airflow.sdk import ObjectStoragePath

        root = ObjectStoragePath(folder if "://" in folder else f"file://{os.path.abspath(folder)}")
        photos = sorted(str(path) for path in root.iterdir()
                        if path.is_file() and path.suffix.lower() in PHOTO_SUFFIXES)
        print(f"{len(photos)} product photo(s) to edit from {folder}")
        return [[photo] for photo in photos]

    edits = SeedreamEditOperator.partial(
        task_id="edit",
        prompt="Put the product on a clean white background with a soft contact shadow, studio lighting; "
               "keep the product itself exactly as it is",
        aspect_ratio="1:1",
        quality="basic",
    ).expand(image_urls=list_photos(INPUT))

    stored = SeedreamTaskSensor.partial(
        task_id="store",
        poke_interval=POLL_INTERVAL,
        timeout=60 * 60,
        output_path=OUTPUT + "/{{ ds }}",
        outlets=[EDITED],
    ).expand(seedream_task_id=edits.output)

    @task
    def publish(stored_images: list[list[str]], ds: str | None = None) -> str:
        """Write tonight's manifest next to the images and return its URI."""
        import json

        from airflow.sdk import ObjectStoragePath

        images = [uri for per_photo in stored_images for uri in per_photo]
        manifest = ObjectStoragePath(f"{OUTPUT}/{ds}/manifest.json")
        manifest.write_text(json.dumps({"date": ds, "images": images}, indent=2))
        print(f"{len(images)} edited image(s) stored; manifest: {manifest}")
        return str(manifest)

    publish(stored.output["stored_images"])


example_seedream_nightly()
