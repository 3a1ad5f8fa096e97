"""Edit one product photo with Seedream 4.5, wait for it in the triggerer, and download the result.

``SeedreamEditOperator`` submits the edit and returns the kie task id; the deferrable ``SeedreamTaskSensor`` waits for
it without holding a worker slot and returns the result URLs; a TaskFlow task streams the images to disk before kie's
temporary links expire.

Settings come from the environment so that the same file runs against kie.ai or the project's emulator
(``make demo`` sets them): ``SEEDREAM_EXAMPLE_IMAGE_URL``, ``SEEDREAM_EXAMPLE_OUTPUT_DIR``,
``SEEDREAM_EXAMPLE_POLL_INTERVAL``.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import Param, dag, task

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
    )

    @task
    def download(result_urls: list[str], output_dir: str, run_id: str | None = None) -> list[str]:
        """Stream every result image to ``output_dir/<run id>/`` and return the file paths."""
        import mimetypes
        import re
        from pathlib import Path

        import requests

        folder = Path(output_dir) / re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id or "manual")
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for index, url in enumerate(result_urls):
            with requests.get(url, stream=True, timeout=(10, 60)) as response:
                response.raise_for_status()
                content_type = response.headers.get("Content-Type", "").split(";")[0]
                extension = mimetypes.guess_extension(content_type) or ".bin"
                path = folder / f"edited_{index}{extension}"
                size = 0
                with path.open("wb") as out:
                    for chunk in response.iter_content(chunk_size=1 << 16):
                        out.write(chunk)
                        size += len(chunk)
            print(f"saved {url} -> {path} ({size} bytes)")
            paths.append(str(path))
        print(f"Edited images written to {folder}")
        return paths

    download(wait.output, OUTPUT_DIR, run_id="{{ run_id }}")


example_seedream_edit()
