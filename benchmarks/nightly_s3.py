"""The nightly example DAG on S3, measured: photos listed from a bucket, results stored to a bucket.

Run by hand (see ``benchmarks/README.md``)::

    .venv/bin/python benchmarks/nightly_s3.py --photos 20
    .venv/bin/python benchmarks/nightly_s3.py --photos 20 --full-size

Starts the emulator (its own process, ``--task-seconds`` per edit, results a quarter of their 2K size unless
``--full-size``) and moto's S3 server (its own process, ``python -m moto.server`` on loopback), puts ``--photos``
sample photos into ``s3://photos/incoming``, points ``aws_default`` at the server by environment variable
(``extra.endpoint_url``, dummy keys), and runs ``example_dags/example_seedream_nightly.py`` once with ``dag.test()``
in this process, as the test suite does: the photos are listed from the bucket and uploaded to kie's File Upload
API, edited, and the results stored under ``s3://aws_default@edits/nightly/<date>/`` with the manifest.

Prints the objects and bytes stored (read back with boto3), unfinished multipart uploads (must be 0), the wall time
of ``dag.test()``, and the peak resident memory of this process (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, the
high-water mark over the process's life) before and after ``dag.test()``. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from _common import API_KEY, Emulator, closing_json, command_line, output_to  # noqa: E402
from s3server import Bucket, MotoServer  # noqa: E402

LOGICAL_DATE = "2026-03-01T02:00:00+00:00"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--task-seconds", type=float, default=1.0, help="how long each emulated edit takes")
    parser.add_argument("--full-size", action="store_true", help="results at true 2K size (several MB each)")
    parser.add_argument("--log", default=None, help="where the DAG run's output goes (default: a temporary file)")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="seedream-s3-bench-"))
    os.environ.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(HERE.parent / "example_dags"),
        "SEEDREAM_NIGHTLY_INPUT": "s3://aws_default@photos/incoming",
        "SEEDREAM_NIGHTLY_OUTPUT": "s3://aws_default@edits/nightly",
        "SEEDREAM_EXAMPLE_POLL_INTERVAL": "0.5",
    })
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        del os.environ[name]
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    log_path = args.log or str(home / "dag-test.log")

    extra = ["--task-seconds", str(args.task_seconds), "--no-rate-limits"] + (["--full-size"] if args.full_size else [])
    with Emulator(time_scale=1.0, extra_args=extra) as kie, MotoServer() as s3:
        import requests

        os.environ["AIRFLOW_CONN_SEEDREAM_DEFAULT"] = json.dumps({
            "conn_type": "seedream", "password": API_KEY, "host": kie.url,
            "extra": {"upload_base_url": kie.url}})
        os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = s3.connection_json()
        samples = requests.get(f"{kie.url}/samples/", timeout=10).json()["samples"]
        photos = Bucket(s3, "photos")
        edits = Bucket(s3, "edits")
        input_bytes = 0
        for index in range(args.photos):
            sample = samples[index % len(samples)]
            data = requests.get(sample["url"], timeout=10).content
            photos.put(f"incoming/photo-{index:04d}{Path(sample['name']).suffix}", data)
            input_bytes += len(data)

        import pendulum

        from support import load_dag

        dag = load_dag(HERE.parent / "example_dags", "example_seedream_nightly")
        before = peak_rss_mib()
        started = time.perf_counter()
        with output_to(log_path):
            run = dag.test(logical_date=pendulum.parse(LOGICAL_DATE))
        seconds = time.perf_counter() - started
        after = peak_rss_mib()

        objects = edits.sizes("nightly/")
        images = {key: size for key, size in objects.items() if not key.endswith("manifest.json")}
        unfinished = edits.uploads_in_progress()
        stats = kie.stats()
    state = str(run.state).rsplit(".", 1)[-1].lower()
    figures = {
        "command": command_line(), "photos": args.photos, "full_size": args.full_size, "state": state,
        "uploads_to_kie": stats["requests"].get("upload", 0), "createTask": stats["requests"].get("createTask", 0),
        "input_bytes": input_bytes, "objects": len(objects), "images": len(images),
        "image_bytes": sum(images.values()), "largest_image": max(images.values(), default=0),
        "manifest": any(key.endswith("manifest.json") for key in objects), "unfinished_uploads": len(unfinished),
        "wall_seconds": round(seconds, 2), "peak_rss_mib_before": round(before, 1), "peak_rss_mib": round(after, 1),
    }
    print(f"DAG run {state} in {seconds:.1f} s (dag.test(), this process); log: {log_path}")
    print(f"inputs: {args.photos} photos, {input_bytes:,} bytes, listed from s3://photos/incoming; "
          f"{figures['uploads_to_kie']} uploads to kie, {figures['createTask']} createTask")
    print(f"stored: {len(objects)} objects under s3://edits/nightly/ ({len(images)} images, "
          f"{figures['image_bytes']:,} bytes, largest {figures['largest_image']:,}; manifest: {figures['manifest']}); "
          f"unfinished multipart uploads: {len(unfinished)}")
    print(f"peak RSS of this process: {after:.1f} MiB after dag.test() ({before:.1f} MiB before it, after imports "
          f"and DAG parsing; the DB migration ran in a subprocess)")
    closing_json(figures)
    return 0 if state == "success" and len(images) == args.photos and not unfinished else 1


if __name__ == "__main__":
    sys.exit(main())
