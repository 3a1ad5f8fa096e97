"""A night's batch in one task: every photo in a folder (or bucket) edited at the account's pace and kept for good.

The layout the README measured closest to kie's floor for a night of hundreds of photos ("A night's batch: which
layout"). Every night at 02:00 UTC:

1. ``list_edits`` lists the JPEG/PNG/WebP files in ``SEEDREAM_BATCH_INPUT`` (a local folder, or a bucket prefix such
   as ``s3://aws_default@product-photos/incoming``) and returns one edit (a dict of request fields) per photo.
2. ``edit_all`` (``SeedreamBatchEditOperator``) checks every edit before paying for any, uploads each photo through
   kie's File Upload API right before its submit, submits at the account's pace (no 429 of its own), records each kie
   task id as it is accepted (on Airflow 3.3+, whose ``task_state_store`` lets a retry re-attach instead of paying
   again; older Airflow gets no retries here), and streams every result image to
   ``SEEDREAM_BATCH_OUTPUT/<date>/`` as its edit ends. With ``defer_after=120`` a night whose last edits end within
   two minutes of the last submit finishes in the worker; the rest would wait in the triggerer.
3. ``publish`` writes ``manifest.json`` next to the images: each photo with its kie task id, its outcome and its
   stored images. An edit that kie failed, or that was not accepted, is listed there with its message, and then fails
   this task: the night shows red while everything that did succeed is stored and listed (``fail_on="never"`` leaves
   that decision here instead of failing the batch before the manifest is written).

The prompt is the DAG's ``prompt`` param (``airflow dags trigger -c '{"prompt": "..."}'`` for a one-off run).
Settings come from the environment so that the same file runs against kie.ai or the project's emulator:
``SEEDREAM_BATCH_INPUT``, ``SEEDREAM_BATCH_OUTPUT``, ``SEEDREAM_EXAMPLE_POLL_INTERVAL``.
"""

from __future__ import annotations

import os

import pendulum
from airflow import __version__ as airflow_version
from airflow.sdk import dag, task
from packaging.version import Version

from airflow_provider_seedream.operators.seedream import SeedreamBatchEditOperator

INPUT = os.environ.get("SEEDREAM_BATCH_INPUT", "/tmp/seedream-batch/photos")
OUTPUT = os.environ.get("SEEDREAM_BATCH_OUTPUT", "file:///tmp/seedream-batch/edited").rstrip("/")
if "://" not in OUTPUT:  # a local folder, relative or with ~: the URI the images and the manifest both go under
    OUTPUT = "file://" + os.path.abspath(os.path.expanduser(OUTPUT))
# A retry re-attaches to the edits a failed try submitted only where Airflow keeps task_state_store (3.3+); on older
# Airflow it would submit, and pay for, every edit again.
RETRIES = 2 if Version(airflow_version) >= Version("3.3") else 0
POLL_INTERVAL = float(os.environ.get("SEEDREAM_EXAMPLE_POLL_INTERVAL", "2"))
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
PROMPT = ("Put the product on a clean white background with a soft contact shadow, studio lighting; "
          "keep the product itself exactly as it is")


@dag(
    dag_id="example_seedream_batch",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params={"prompt": PROMPT},
    tags=["seedream", "example"],
)
def example_seedream_batch():
    @task
    def list_edits(folder: str, params: dict | None = None) -> list[dict]:
        """One edit per product photo in ``folder``, sorted so that a night's edits keep their order on a retry."""
        from airflow.sdk import ObjectStoragePath

        root = ObjectStoragePath(folder if "://" in folder else f"file://{os.path.abspath(folder)}")
        photos = sorted(str(path) for path in root.iterdir()
                        if path.is_file() and path.suffix.lower() in PHOTO_SUFFIXES)
        print(f"{len(photos)} product photo(s) to edit from {folder}")
        prompt = (params or {}).get("prompt") or PROMPT
        return [{"prompt": prompt, "image_urls": [photo], "aspect_ratio": "1:1", "quality": "basic"}
                for photo in photos]

    edits = list_edits(INPUT)
    outcomes = SeedreamBatchEditOperator(
        task_id="edit_all",
        edits=edits,
        output_path=OUTPUT + "/{{ ds }}",
        poll_interval=POLL_INTERVAL,
        defer_after=120,
        fail_on="never",
        retries=RETRIES,
    )

    @task
    def publish(edits: list[dict], outcomes: list[dict], ds: str | None = None) -> str:
        """Write tonight's manifest next to the images; fail, naming each photo, if any edit did not succeed."""
        import json

        from airflow.sdk import ObjectStoragePath

        photos = [
            {"photo": edit["image_urls"][0], "kie_task_id": outcome["task_id"], "state": outcome["state"],
             "images": outcome["stored_images"], "fail_code": outcome["fail_code"], "fail_msg": outcome["fail_msg"]}
            for edit, outcome in zip(edits, outcomes, strict=True)
        ]
        manifest = ObjectStoragePath(f"{OUTPUT}/{ds}/manifest.json")
        if manifest.protocol == "file":  # a night where nothing was stored has no local folder yet (buckets need none)
            manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text(json.dumps({"date": ds, "photos": photos}, indent=2))
        failed = [p for p in photos if p["state"] != "success"]
        print(f"{len(photos) - len(failed)} of {len(photos)} photo(s) edited and stored; manifest: {manifest}")
        if failed:
            raise RuntimeError(f"{len(failed)} of {len(photos)} edit(s) did not succeed (listed in {manifest}): "
                               + "; ".join(f"{p['photo']}: {p['state']} {p['fail_code']} {p['fail_msg']}"
                                           for p in failed))
        return str(manifest)

    publish(edits, outcomes.output)


example_seedream_batch()
