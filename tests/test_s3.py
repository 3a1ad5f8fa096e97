"""S3 as users run it: ``s3://aws_default@bucket/...`` through apache-airflow-providers-amazon and s3fs, against a
real S3-protocol server (moto's server mode, its own process on loopback, started here), with the emulator as kie.

- the nightly example DAG end to end (``dag.test()``): photos listed from a bucket (or a local folder), uploaded to
  kie's File Upload API, results stored under the dated prefix, the manifest written, nothing temporary left or seen;
- the placement promise on S3: a reader polling the bucket while a large result is stored sees the earlier object or
  the whole new one, never a part and never another key; a store that fails leaves the bucket as it was.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pendulum
import pytest
import requests
import support
from s3server import Bucket, MotoServer
from support import stored_xcoms

from airflow_provider_seedream import storage, storage_policy
from airflow_provider_seedream.exceptions import SeedreamStorageError
from airflow_provider_seedream.hooks.seedream import SeedreamHook

pytestmark = pytest.mark.s3

EXAMPLES = Path(__file__).resolve().parent.parent / "example_dags"
LOGICAL_DATE = pendulum.datetime(2026, 3, 1, 2, tz="UTC")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="session")
def moto_server():
    with MotoServer() as server:
        yield server


def _forget_s3_filesystems() -> None:
    """Drop the cached s3fs instances (and their listing caches): each test starts from an empty server."""
    from airflow.sdk.io.store import _STORE_CACHE
    from s3fs import S3FileSystem

    for key in [k for k in _STORE_CACHE if k.startswith("s3")]:
        _STORE_CACHE.pop(key, None)
    S3FileSystem.clear_instance_cache()


@pytest.fixture
def s3(moto_server, monkeypatch):
    """The moto server, emptied, with the Airflow connection ``aws_default`` pointing at it by environment."""
    moto_server.reset()
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)  # nothing from the machine's own AWS setup may take part
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", moto_server.connection_json())
    _forget_s3_filesystems()
    yield moto_server
    _forget_s3_filesystems()


class ListingWatcher:
    """Lists a bucket prefix over and over from its own thread (as another program reading the bucket would) and
    keeps every key and size it ever saw."""

    def __init__(self, bucket: Bucket, prefix: str) -> None:
        self.bucket, self.prefix = bucket, prefix
        self.seen: dict[str, set[int]] = {}
        self.listings = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, size in self.bucket.sizes(self.prefix).items():
                self.seen.setdefault(key, set()).add(size)
            self.listings += 1
            self._stop.wait(0.01)  # pace the listing loop; it is not waiting for anything

    def __enter__(self) -> ListingWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


# ------------------------------------------------------------------------------------------ the nightly example DAG
def sample_photos(kie, count: int = 3) -> dict[str, bytes]:
    listing = requests.get(f"{kie.url}/samples/", timeout=10).json()["samples"]
    chosen: dict[str, bytes] = {}
    for sample in listing:  # one of each format, so the run covers PNG, JPEG and WebP inputs
        if len(chosen) < count and all(not name.endswith(sample["name"][-4:]) for name in chosen):
            chosen[sample["name"]] = requests.get(sample["url"], timeout=10).content
    return chosen


@pytest.mark.parametrize("source", ["bucket", "local"])
def test_nightly_dag_reads_and_stores_on_s3(source, s3, emulator, migrated_db, tmp_path, monkeypatch, api_key):
    monkeypatch.setenv("SEEDREAM_EXAMPLE_POLL_INTERVAL", "0.2")
    photos = sample_photos(emulator)
    edits = Bucket(s3, "product-edits")
    if source == "bucket":
        incoming = Bucket(s3, "product-photos")
        for name, data in photos.items():
            incoming.put(f"incoming/{name}", data)
        incoming.put("incoming/README.txt", b"not a photo")
        monkeypatch.setenv("SEEDREAM_NIGHTLY_INPUT", "s3://aws_default@product-photos/incoming")
    else:
        folder = tmp_path / "photos"
        folder.mkdir()
        for name, data in photos.items():
            (folder / name).write_bytes(data)
        monkeypatch.setenv("SEEDREAM_NIGHTLY_INPUT", str(folder))
    monkeypatch.setenv("SEEDREAM_NIGHTLY_OUTPUT", "s3://aws_default@product-edits/nightly")

    with ListingWatcher(edits, "nightly/") as watcher:
        run = support.load_dag(EXAMPLES, "example_seedream_nightly").test(logical_date=LOGICAL_DATE)
    assert str(run.state) in ("success", "DagRunState.SUCCESS")

    # kie received one upload per photo (the bytes of the photo itself) and one edit per photo, sent with the
    # uploaded URLs.
    stats = emulator.stats()
    assert stats["requests"]["createTask"] == 3 and stats["requests"]["upload"] == 3
    sent = [url for task in stats["tasks"].values() for url in task["input"]["image_urls"]]
    assert all("/files/airflow-seedream/" in url for url in sent)
    assert sorted(requests.get(url, timeout=10).content for url in sent) == sorted(photos.values())

    # The bucket holds exactly the three results under the dated prefix, each the bytes kie served, and the manifest.
    prefix = f"nightly/2026-03-01/example_seedream_nightly/{storage_policy.safe_component(run.run_id)}/store"
    results = stored_xcoms(run, "result_urls")
    expected = {f"{prefix}/map-{i}_image-0.png": requests.get(results[("store", i)][0], timeout=10).content
                for i in range(3)}
    objects = edits.sizes()
    assert set(objects) == set(expected) | {"nightly/2026-03-01/manifest.json"}
    for key, data in expected.items():
        assert edits.get(key) == data and objects[key] == len(data) > 0
    manifest = json.loads(edits.get("nightly/2026-03-01/manifest.json"))
    assert manifest == {"date": "2026-03-01",
                        "images": [f"s3://aws_default@product-edits/{key}" for key in sorted(expected)]}
    assert stored_xcoms(run, "return_value")[("publish", -1)] == \
        "s3://aws_default@product-edits/nightly/2026-03-01/manifest.json"

    # Nothing temporary was ever listed, nothing half-written, nothing left as an unfinished upload.
    assert watcher.listings > 0
    assert set(watcher.seen) <= set(objects)
    assert all(sizes == {objects[key]} for key, sizes in watcher.seen.items()), watcher.seen
    assert edits.uploads_in_progress() == []
    assert api_key.encode() not in b"".join(edits.get(key) for key in objects)
    assert api_key.encode() not in migrated_db.read_bytes()


# ------------------------------------------------------------------------------------------ placement on S3
class GatedImageServer:
    """A result host on loopback for one large image: ``/gated.png`` sends the first ``split`` bytes, then holds the
    rest until ``release()``; ``/short.png`` announces the whole image and sends only ``split`` bytes, then closes;
    ``/small.png`` is a small image (an earlier try's result)."""

    def __init__(self, image: bytes, small: bytes, split: int) -> None:
        self.image, self.small, self.split = image, small, split
        self.gate = threading.Event()
        self.hits: dict[str, int] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                body = outer.small if self.path == "/small.png" else outer.image
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path == "/small.png":
                    self.wfile.write(body)
                    return
                self.wfile.write(body[:outer.split])
                self.wfile.flush()
                if self.path == "/short.png":
                    self.close_connection = True
                    return
                outer.gate.wait(timeout=60)
                self.wfile.write(body[outer.split:])

            def log_message(self, *args):
                pass

        self.http = support.LoopbackServer(Handler)
        self.url = self.http.url

    def close(self) -> None:
        self.gate.set()
        self.http.close()


def large_png(size: int) -> bytes:
    """A body that is a PNG by its signature (what the store checks), of incompressible bytes."""
    return PNG_SIGNATURE + os.urandom(size - len(PNG_SIGNATURE))


@pytest.fixture
def result_host():
    # 12 MiB, as a full-size 4K PNG from the emulator; 7 MiB arrive before the hold, more than one 5 MiB part.
    server = GatedImageServer(large_png(12 * 1024 * 1024), large_png(64 * 1024), split=7 * 1024 * 1024)
    yield server
    server.close()


def store_to(url: str, output_path: str) -> list[storage.StoredImage]:
    return storage.store_results(SeedreamHook(retry_base=0.01), "task123", [url], output_path=output_path,
                                 dag_id="d", run_id="r", airflow_task_id="t", map_index=-1,
                                 log=logging.getLogger("test_s3"))


def wait_for(condition, what: str, seconds: float = 30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_reader_sees_the_old_object_or_the_whole_new_one_never_a_part(s3, emulator, result_host):
    bucket = Bucket(s3, "edits")
    key = "nightly/d/r/t/image-0.png"
    old = store_to(f"{result_host.url}/small.png", "s3://aws_default@edits/nightly")  # an earlier try's result
    assert old[0].uri == f"s3://aws_default@edits/{key}" and bucket.get(key) == result_host.small

    outcome: dict[str, object] = {}

    def run_store() -> None:
        try:
            outcome["stored"] = store_to(f"{result_host.url}/gated.png", "s3://aws_default@edits/nightly")
        except BaseException as error:  # noqa: BLE001 - reported by the test thread below
            outcome["error"] = error

    with ListingWatcher(bucket, "nightly/") as watcher:
        storing = threading.Thread(target=run_store)
        storing.start()
        # Mid-write: 7 of 12 MiB have arrived and at least one part is uploaded, and the new body is still held.
        uploads = wait_for(lambda: [u for u in bucket.uploads_in_progress() if u["parts"] >= 1], "a part uploaded")
        assert [u["key"] for u in uploads] == [key]  # the upload goes to the final key, no other key
        assert bucket.sizes() == {key: len(result_host.small)}  # a listing shows the old object only
        assert bucket.get(key) == result_host.small  # and reading it returns the old object whole
        result_host.gate.set()
        storing.join(timeout=60)
    assert "error" not in outcome, outcome.get("error")
    stored = outcome["stored"]
    assert stored[0].uri == f"s3://aws_default@edits/{key}" and stored[0].size == len(result_host.image)
    assert bucket.sizes() == {key: len(result_host.image)}
    assert bucket.get(key) == result_host.image
    assert bucket.uploads_in_progress() == []
    # Every listing taken while storing showed one key, with the old size or the new one: nothing else.
    assert watcher.listings > 0 and set(watcher.seen) == {key}
    assert watcher.seen[key] <= {len(result_host.small), len(result_host.image)}


def test_a_store_that_breaks_off_leaves_the_bucket_as_it_was(s3, emulator, result_host):
    bucket = Bucket(s3, "edits")
    key = "nightly/d/r/t/image-0.png"
    bucket.put(key, result_host.small)  # an earlier try's result
    with ListingWatcher(bucket, "") as watcher, pytest.raises(SeedreamStorageError) as failed:
        store_to(f"{result_host.url}/short.png", "s3://aws_default@edits/nightly")
    assert result_host.hits["/short.png"] == 2  # the first try and one retry, each cut after 7 MiB (a part sent)
    assert f"{result_host.url}/short.png" in str(failed.value) and failed.value.stored == []
    assert bucket.sizes() == {key: len(result_host.small)} and bucket.get(key) == result_host.small
    assert bucket.uploads_in_progress() == []  # both multipart uploads were aborted
    assert set(watcher.seen) == {key} and watcher.seen[key] == {len(result_host.small)}


def test_storing_a_large_result_to_s3_holds_a_few_parts_in_memory_not_the_object(s3, emulator):
    """A 48 MiB result goes to S3 in 5 MiB parts; the traced peak stays near a few parts, whatever the size."""
    bucket = Bucket(s3, "edits")
    body = large_png(48 * 1024 * 1024)
    server = GatedImageServer(body, large_png(64 * 1024), split=len(body))
    server.gate.set()  # nothing held back here
    try:
        store_to(f"{server.url}/small.png", "s3://aws_default@edits/warmup")  # imports, sessions, the filesystem
        tracemalloc.start()
        started = time.perf_counter()
        try:
            stored = store_to(f"{server.url}/gated.png", "s3://aws_default@edits/nightly")
            elapsed = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        server.close()
    assert stored[0].size == len(body) and bucket.get("nightly/d/r/t/image-0.png") == body
    assert bucket.uploads_in_progress() == []
    part = storage_policy.STORE_BLOCK_BYTES
    print(f"\nstored a {len(body) / 1024 / 1024:.0f} MiB result to S3 in {elapsed:.2f} s; traced peak "
          f"{peak / 1024 / 1024:.1f} MiB (parts of {part / 1024 / 1024:g} MiB)")
    assert peak < 4 * part, f"peak {peak} is not bounded by the part size ({part}; object {len(body)})"


def test_a_missing_bucket_fails_the_store_and_is_not_created(s3, emulator, result_host):
    """Creating buckets is not this package's decision: a missing one fails the store, naming the problem."""
    result_host.gate.set()
    with pytest.raises(SeedreamStorageError, match="The specified bucket does not exist") as failed:
        store_to(f"{result_host.url}/small.png", "s3://aws_default@no-such-bucket/edits")
    assert f"{result_host.url}/small.png" in str(failed.value)
    assert [b["Name"] for b in s3.client().list_buckets().get("Buckets", [])] == []
