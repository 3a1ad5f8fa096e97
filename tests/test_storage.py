"""Result images to durable storage: the pure rules (table tests), then real downloads from the emulator.

Storage targets: ``file://`` (a tmp folder), ``memory://`` (fsspec's in-memory filesystem, bucket-style paths) and an
``s3://conn@bucket`` path backed by an in-memory filesystem attached under an Airflow connection id, so the
object-store code path (no folders, ``conn_id@`` in the URI) runs without a network. Real S3 (the Amazon provider and
s3fs against a moto server) is in ``tests/test_s3.py``.
"""

from __future__ import annotations

import functools
import json
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import requests
import support
from support import run_trigger

from airflow_provider_seedream import exceptions as exc
from airflow_provider_seedream import redaction, storage, storage_policy
from airflow_provider_seedream.exceptions import SeedreamStorageError
from airflow_provider_seedream.hooks.seedream import SeedreamHook
from airflow_provider_seedream.operators.seedream import SeedreamEditOperator
from airflow_provider_seedream.sensors.seedream import SeedreamTaskSensor
from airflow_provider_seedream.version_compat import TaskDeferred

RUN_ID = "manual__2026-01-02T03:04:05+00:00"
SAFE_RUN = storage_policy.safe_component(RUN_ID)


RunningTI = functools.partial(support.RunningTI, dag_id="nightly", run_id=RUN_ID)
def ctx(**kwargs) -> dict:
    return {"ti": RunningTI(**kwargs)}


def submit(url: str, prompt: str = "put it on marble", quality: str = "basic") -> str:
    return SeedreamHook(retry_base=0.05).create_edit_task(prompt, [url], quality=quality)


def wait_done(task_id: str) -> list[str]:
    return list(SeedreamHook().wait_for_task(task_id, poll_interval=0.05, timeout=30).result_urls)


def poke_sensor(kie_task_id: str, output_path, **kwargs) -> SeedreamTaskSensor:
    kwargs.setdefault("task_id", "wait")
    return SeedreamTaskSensor(seedream_task_id=kie_task_id, output_path=output_path, deferrable=False, mode="poke",
                              poke_interval=0.05, timeout=30, **kwargs)


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------------------------ pure: names
@pytest.mark.parametrize(
    "raw, expected",
    [
        ("edit", "edit"),
        ("group.edit-1_x", "group.edit-1_x"),
        ("manual__2026-01-02T03:04:05+00:00", "manual__2026-01-02T03_04_05_00_00-" + storage_policy.safe_component(
            "manual__2026-01-02T03:04:05+00:00").rsplit("-", 1)[1]),
        ("..", "id-" + storage_policy.safe_component("..").rsplit("-", 1)[1]),
        ("a/../../etc", "a_.._.._etc-" + storage_policy.safe_component("a/../../etc").rsplit("-", 1)[1]),
    ],
)
def test_safe_component(raw, expected):
    assert storage_policy.safe_component(raw) == expected
    assert "/" not in expected and ":" not in expected


def test_safe_component_never_merges_two_ids():
    ids = ["run:1", "run+1", "run_1", "run 1", "rün_1", "run/1"]
    assert len({storage_policy.safe_component(i) for i in ids}) == len(ids)


@pytest.mark.parametrize(
    "map_index, image_index, leaf",
    [(-1, 0, "image-0"), (None, 2, "image-2"), (0, 0, "map-0_image-0"), (12, 1, "map-12_image-1")],
)
def test_stored_image_stem(map_index, image_index, leaf):
    stem = storage_policy.stored_image_stem("nightly", RUN_ID, "edit", map_index, image_index)
    assert stem == f"nightly/{SAFE_RUN}/edit/{leaf}"


def test_stems_of_different_task_instances_never_collide():
    a = storage_policy.stored_image_stem("d", "r", "edit_1", -1, 0)  # unmapped task called edit_1
    b = storage_policy.stored_image_stem("d", "r", "edit", 1, 0)  # mapped task edit, index 1
    assert a != b


def test_stale_siblings():
    assert storage_policy.stale_siblings("x/image-0", ".png") == ["x/image-0.jpg", "x/image-0.webp"]


PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 8
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 12
WEBP = b"RIFF\0\0\0\0WEBPVP8 "


@pytest.mark.parametrize(
    "head, content_type, expected",
    [
        (PNG, "image/png", ("image/png", ".png")),
        (PNG, "application/octet-stream", ("image/png", ".png")),  # the bytes decide
        (JPEG, "image/png", ("image/jpeg", ".jpg")),  # a lying header loses
        (WEBP, None, ("image/webp", ".webp")),
        (b"GIF89a" + b"\0" * 10, "image/gif", ("image/gif", ".gif")),
        (b"\0\0\0\0unknown-format", "image/avif", ("image/avif", ".avif")),
        (b"<html><body>expired", "text/html", None),
        (b"<?xml version", "image/png", None),  # an error page that claims to be an image
        (b"", "image/png", ("image/png", ".png")),
        (b"garbage", None, None),
    ],
)
def test_result_type(head, content_type, expected):
    assert storage_policy.result_type(head, content_type) == expected


@pytest.mark.parametrize(
    "length, encoding, expected",
    [("100", None, 100), (" 7 ", "identity", 7), (None, None, None), ("x", None, None), ("-1", None, None),
     ("100", "gzip", None)],
)
def test_expected_size(length, encoding, expected):
    assert storage_policy.expected_size(length, encoding) == expected


@pytest.mark.parametrize(
    "expected, written, problem",
    [(100, 100, None), (None, 5, None), (100, 60, "received 60 of 100 bytes"), (None, 0, "received 0 bytes"),
     (5, 0, "received 0 bytes")],
)
def test_size_problem(expected, written, problem):
    found = storage_policy.size_problem(expected, written)
    assert (found is None) == (problem is None) and (problem is None or problem in found)


@pytest.mark.parametrize("status, kind", [(403, "expired"), (404, "expired"), (410, "expired"), (429, "server"),
                                          (500, "server"), (503, "server"), (400, "refused"), (401, "refused")])
def test_failure_for_status(status, kind):
    assert storage_policy.failure_for_status(status) == kind


@pytest.mark.parametrize(
    "kind, minted, retried, action",
    [
        ("expired", False, False, "mint"),
        ("expired", True, False, "give_up"),  # a freshly minted link that fails is not minted again
        ("expired", False, True, "mint"),  # a retried short read whose link then died still gets a fresh link
        ("short", False, False, "retry"),
        ("short", True, False, "retry"),
        ("short", False, True, "give_up"),  # retried once, never more
        ("transport", False, False, "retry"),
        ("server", False, True, "give_up"),
        ("refused", False, False, "give_up"),
        ("not_image", False, False, "give_up"),
    ],
)
def test_next_download_action(kind, minted, retried, action):
    assert storage_policy.next_download_action(kind, minted=minted, retried=retried) == action


@pytest.mark.parametrize(
    "url, shown",
    [
        ("https://h.example/a.png", "https://h.example/a.png"),
        ("https://h.example/a.png?X-Amz-Signature=abc", "https://h.example/a.png?…"),
        ("s3://key:secret@bucket/p", "s3://key:***@bucket/p"),
        ("s3://aws_default@bucket/p", "s3://aws_default@bucket/p"),
        ("/local/path", "/local/path"),
    ],
)
def test_redact_url(url, shown):
    assert redaction.redact_url(url) == shown


@pytest.mark.parametrize(
    "uri, asset", [("s3://aws_default@b/k.png", "s3://b/k.png"), ("file:///tmp/a.png", "file:///tmp/a.png")]
)
def test_asset_uri(uri, asset):
    assert storage_policy.asset_uri(uri) == asset


@pytest.mark.parametrize("value, fragment", [("", "must be a local path"), (None, "must be a local path"),
                                             (5, "must be a local path"), ("https://h/x", "not a web URL"),
                                             ("a\x00b", "NUL")])
def test_bad_output_paths(value, fragment):
    with pytest.raises(exc.SeedreamValidationError) as err:
        storage_policy.check_output_path(value)
    assert str(err.value).startswith("output_path:") and fragment in str(err.value)


@pytest.mark.parametrize(
    "protocol, expected",
    [
        (("s3", "s3a"), "direct"),  # s3fs's S3FileSystem.protocol
        ("s3", "direct"),
        ("S3A", "direct"),
        (("file", "local"), "rename"),
        ("file", "rename"),
        ("memory", "rename"),  # fsspec's in-memory store shows a file while it is written: not an object store
        (("gs", "gcs"), "rename"),  # not verified here: the temporary name and a move, as on any unknown store
        (None, "rename"),
    ],
)
def test_placement(protocol, expected):
    assert storage_policy.placement(protocol) == expected


@pytest.mark.parametrize("protocol, expected", [("file", True), ("", True), (None, True), ("local", True),
                                                ("s3", False), ("gs", False), ("memory", False)])
def test_has_directories(protocol, expected):
    assert storage_policy.has_directories(protocol) is expected


# --------------------------------------------------------------------------------------------- file:// end to end
def test_sensor_streams_results_to_a_local_folder(emulator, tmp_path, logs, api_key):
    task_id = submit(emulator.sample_url())
    context = ctx()
    urls = poke_sensor(task_id, str(tmp_path)).execute(context)
    ti = context["ti"]
    assert urls == ti.xcoms["result_urls"] and len(urls) == 1  # the return value stays the result URLs
    stored = ti.xcoms["stored_images"]
    assert stored == [f"file://{tmp_path}/nightly/{SAFE_RUN}/wait/image-0.png"]
    assert files_under(tmp_path) == [f"nightly/{SAFE_RUN}/wait/image-0.png"]  # no .part leftovers
    on_disk = (tmp_path / f"nightly/{SAFE_RUN}/wait/image-0.png").read_bytes()
    assert on_disk == requests.get(urls[0], timeout=10).content
    text = logs.text()
    assert "Stored result image 1/1:" in text and "bytes (image/png) in" in text
    assert "Stored 1 result image(s) of Seedream task" in text
    assert api_key not in text and api_key not in json.dumps(ti.xcoms)


def test_a_result_larger_than_the_chunk_is_streamed_in_chunks(emulator, tmp_path):
    task_id = submit(emulator.sample_url())
    url = wait_done(task_id)[0]
    size = len(requests.get(url, timeout=10).content)
    sensor = poke_sensor(task_id, f"file://{tmp_path}")
    sensor.hook.download_chunk_size = 4096
    assert size > 8 * sensor.hook.download_chunk_size
    writes: list[int] = []
    session = sensor.hook.download_session
    original = session.get

    def counting_get(*args, **kwargs):
        response = original(*args, **kwargs)
        real_iter = response.iter_content

        def iter_content(chunk_size=1, decode_unicode=False):
            for chunk in real_iter(chunk_size=chunk_size, decode_unicode=decode_unicode):
                writes.append(len(chunk))
                yield chunk

        response.iter_content = iter_content  # type: ignore[method-assign]
        return response

    session.get = counting_get  # type: ignore[method-assign]
    sensor.execute(ctx())
    assert sum(writes) == size and max(writes) <= 4096 and len(writes) >= size // 4096
    assert (tmp_path / f"nightly/{SAFE_RUN}/wait/image-0.png").stat().st_size == size


def test_storing_a_full_size_4k_result_keeps_memory_bounded(emulator, tmp_path):
    """A true-size 4K PNG (~12 MB) is stored with a traced peak far below its size; prints the figures."""
    emulator.configure(full_size=True)
    task_id = submit(emulator.sample_url(), quality="high")
    url = wait_done(task_id)[0]
    size = len(requests.get(url, timeout=60).content)  # also warms the emulator's render cache
    assert size > 4 * 1024 * 1024
    # Warm-up store (imports, sessions, filesystem); then measure a second, complete store of the same image.
    poke_sensor(task_id, str(tmp_path), task_id="warmup").execute(ctx(task_id="warmup"))
    sensor = poke_sensor(task_id, str(tmp_path))
    sensor.hook.settings  # noqa: B018 - read the connection outside the measurement
    tracemalloc.start()
    started = time.perf_counter()
    try:
        sensor.execute(ctx())
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    stored = tmp_path / f"nightly/{SAFE_RUN}/wait/image-0.png"
    assert stored.stat().st_size == size
    print(f"\nstored a full-size 4K result: {size / 1e6:.1f} MB in {elapsed:.2f} s; traced peak {peak / 1e6:.2f} MB "
          f"({peak / size:.1%} of the image; chunk {storage_policy.DEFAULT_CHUNK_BYTES // 1024} KiB)")
    assert peak < size / 8, f"peak {peak} is not far below the image size {size}"


def test_an_expired_result_url_is_reminted_once(emulator, tmp_path, logs):
    task_id = submit(emulator.sample_url(), "[emulator: expire_after=0]")
    url = wait_done(task_id)[0]
    assert requests.get(url, timeout=10).status_code == 403
    context = ctx()
    poke_sensor(task_id, str(tmp_path)).execute(context)
    assert emulator.count("download-url") == 1
    assert files_under(tmp_path) == [f"nightly/{SAFE_RUN}/wait/image-0.png"]
    text = logs.text()
    assert "the result URL has expired (the result host answered HTTP 403)" in text
    assert "minting a fresh link with kie's download-url and trying once more" in text
    assert "/dl/" not in text  # the minted link is a capability: never logged
    assert context["ti"].xcoms["result_urls"] == [url]  # the task still reports kie's own URL


def test_storing_fails_loudly_naming_the_urls_and_a_retry_stores_without_paying_again(emulator, tmp_path):
    emulator.configure(download_url_ttl=0)  # minted links die at once: nothing can be downloaded
    task_id = submit(emulator.sample_url(), "[emulator: expire_after=0]")
    url = wait_done(task_id)[0]
    first = ctx()
    with pytest.raises(SeedreamStorageError) as err:
        poke_sensor(task_id, str(tmp_path)).execute(first)
    message = str(err.value)
    assert url in message and task_id in message and "no new cost" in message
    assert err.value.result_urls == [url] and err.value.stored == []
    assert not isinstance(err.value, exc.AirflowFailException)  # Airflow's retries apply
    assert first["ti"].xcoms["result_urls"] == [url] and "stored_images" not in first["ti"].xcoms
    assert files_under(tmp_path) == []  # no half files
    assert emulator.count("download-url") == 1  # minted once, not again for the fresh link

    emulator.configure(download_url_ttl=1200)
    created = emulator.count("createTask")
    retry = ctx()
    poke_sensor(task_id, str(tmp_path)).execute(retry)
    assert emulator.count("createTask") == created  # the retry re-read the same kie task
    assert retry["ti"].xcoms["stored_images"] == [f"file://{tmp_path}/nightly/{SAFE_RUN}/wait/image-0.png"]


def test_a_dropped_result_connection_is_retried_once(emulator, tmp_path, logs):
    task_id = submit(emulator.sample_url())
    wait_done(task_id)
    emulator.faults("results", {"kind": "reset"})
    poke_sensor(task_id, str(tmp_path)).execute(ctx())
    assert files_under(tmp_path) == [f"nightly/{SAFE_RUN}/wait/image-0.png"]
    assert "trying once more" in logs.text()


def test_a_rerun_overwrites_its_own_files_and_nobody_elses(emulator, tmp_path):
    png_task = submit(emulator.sample_url())
    jpeg_task = submit(emulator.sample_url(), "[emulator: format=jpeg]")
    wait_done(png_task), wait_done(jpeg_task)
    other = ctx(task_id="other_wait")
    poke_sensor(png_task, str(tmp_path), task_id="other_wait").execute(other)
    poke_sensor(png_task, str(tmp_path)).execute(ctx())
    before = files_under(tmp_path)
    poke_sensor(png_task, str(tmp_path)).execute(ctx())  # the same task instance again: same names
    assert files_under(tmp_path) == before
    poke_sensor(jpeg_task, str(tmp_path)).execute(ctx())  # a retry whose result came back as JPEG
    assert files_under(tmp_path) == [f"nightly/{SAFE_RUN}/other_wait/image-0.png",
                                     f"nightly/{SAFE_RUN}/wait/image-0.jpg"]


def test_mapped_task_instances_get_their_own_names(emulator, tmp_path):
    task_id = submit(emulator.sample_url())
    wait_done(task_id)
    for index in (0, 1):
        poke_sensor(task_id, str(tmp_path)).execute(ctx(map_index=index))
    assert files_under(tmp_path) == [f"nightly/{SAFE_RUN}/wait/map-0_image-0.png",
                                     f"nightly/{SAFE_RUN}/wait/map-1_image-0.png"]


# ------------------------------------------------------------------------------------- short reads and bad bodies
class _LyingServer:
    """Serves an image whose Content-Length promises more than is sent (``/short``; ``/short-once`` only the
    first time), and an HTML page with status 200 (``/html``)."""

    def __init__(self, image: bytes) -> None:
        self.image = image
        self.hits: dict[str, int] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                if self.path == "/html":
                    body = b"<html><body>Link expired</body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                short = self.path == "/short" or (self.path == "/short-once" and outer.hits[self.path] == 1)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(outer.image)))
                self.end_headers()
                self.wfile.write(outer.image[: len(outer.image) // 2] if short else outer.image)
                if short:
                    self.close_connection = True

            def log_message(self, *args):
                pass

        self.http = support.LoopbackServer(Handler)
        self.url = self.http.url

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def lying_server(emulator):
    server = _LyingServer(requests.get(emulator.sample_url(), timeout=10).content)
    yield server
    server.close()


def store(urls, root, log_name="test"):
    import logging

    return storage.store_results(SeedreamHook(retry_base=0.01), "task123", urls, output_path=str(root),
                                 dag_id="d", run_id="r", airflow_task_id="t", map_index=-1,
                                 log=logging.getLogger(log_name))


def test_a_short_read_is_retried_once_and_never_kept(lying_server, tmp_path):
    stored = store([lying_server.url + "/short-once"], tmp_path)
    assert lying_server.hits["/short-once"] == 2
    assert (tmp_path / "d/r/t/image-0.png").read_bytes() == lying_server.image
    assert stored[0].size == len(lying_server.image)

    with pytest.raises(SeedreamStorageError, match="broke off|received") as err:
        store([lying_server.url + "/short"], tmp_path / "second")
    assert lying_server.hits["/short"] == 2  # once, then one retry
    assert lying_server.url + "/short" in str(err.value)
    assert not (tmp_path / "second").exists() or files_under(tmp_path / "second") == []


def test_a_body_that_is_not_an_image_is_refused(lying_server, tmp_path):
    with pytest.raises(SeedreamStorageError, match="did not send an image"):
        store([lying_server.url + "/html"], tmp_path)
    assert lying_server.hits["/html"] == 1 and files_under(tmp_path) == []


def test_the_api_key_never_goes_to_the_result_host(lying_server, tmp_path, emulator, api_key):
    seen: list[dict] = []
    hook = SeedreamHook()
    original = hook.download_session.get

    def spy(url, **kwargs):
        response = original(url, **kwargs)
        seen.append(dict(response.request.headers))
        return response

    hook.download_session.get = spy  # type: ignore[method-assign]
    hook.settings  # noqa: B018 - the API session exists and holds the key
    import logging

    storage.store_results(hook, "t", [lying_server.url + "/short-once"], output_path=str(tmp_path), dag_id="d",
                          run_id="r", airflow_task_id="t", map_index=-1, log=logging.getLogger("t"))
    assert seen and all("Authorization" not in headers for headers in seen)
    assert all(api_key not in json.dumps(headers) for headers in seen)


# ------------------------------------------------------------------------------------------- bucket-style targets
def test_memory_bucket_target(emulator, memory_fs):
    task_id = submit(emulator.sample_url())
    context = ctx()
    urls = poke_sensor(task_id, "memory://bucket/edits").execute(context)
    stored = context["ti"].xcoms["stored_images"]
    assert len(stored) == 1 and stored[0].startswith("memory://") and stored[0].endswith(
        f"bucket/edits/nightly/{SAFE_RUN}/wait/image-0.png")
    keys = [k for k in memory_fs.store if "edits" in k]
    assert len(keys) == 1 and ".part-" not in keys[0]
    assert memory_fs.cat_file(keys[0]) == requests.get(urls[0], timeout=10).content


def test_s3_style_path_with_a_connection_id(emulator, memory_fs):
    """``s3://conn@bucket/prefix`` as an Airflow ObjectStoragePath; the filesystem attached for that connection is
    in memory here, so no folders are made and nothing leaves the machine (tests/test_s3.py uses a real S3 server).
    The filesystem's own protocol decides the placement: this one is written to a temporary name and moved."""
    task_id = submit(emulator.sample_url())
    context = ctx()
    poke_sensor(task_id, "s3://fake_s3@bucket/edits").execute(context)
    stored = context["ti"].xcoms["stored_images"]
    assert stored == [f"s3://fake_s3@bucket/edits/nightly/{SAFE_RUN}/wait/image-0.png"]
    assert [k for k in memory_fs.store if k.endswith("image-0.png")] == [
        f"/bucket/edits/nightly/{SAFE_RUN}/wait/image-0.png"]


def test_unregistered_scheme_fails_before_the_wait(emulator):
    task_id = submit(emulator.sample_url())
    polls = emulator.count("recordInfo")
    with pytest.raises(exc.SeedreamValidationError, match=r"output_path: no filesystem is registered for gs://"):
        poke_sensor(task_id, "gs://bucket/edits").execute(ctx())
    assert emulator.count("recordInfo") == polls


def test_operator_checks_output_path_before_paying(emulator):
    op = SeedreamEditOperator(task_id="edit", prompt="p", image_urls=[emulator.sample_url()],
                              wait_for_completion=True, output_path="gs://bucket/edits")
    with pytest.raises(exc.SeedreamValidationError, match="output_path"):
        op.execute(ctx(task_id="edit"))
    assert emulator.count("createTask") == 0


def test_operator_refuses_output_path_without_waiting():
    with pytest.raises(exc.SeedreamValidationError, match="wait_for_completion=True"):
        SeedreamEditOperator(task_id="edit", prompt="p", image_urls=["https://e.com/a.png"], output_path="/tmp/x")


def test_deferrable_operator_stores_after_resuming(emulator, tmp_path):
    op = SeedreamEditOperator(task_id="edit", prompt="p", image_urls=[emulator.sample_url()],
                              wait_for_completion=True, deferrable=True, poll_interval=0.05, timeout=30,
                              output_path=f"file://{tmp_path}/{{{{ ds }}}}")
    context = ctx(task_id="edit")
    context["ds"] = "2026-01-02"
    op.render_template_fields(context)
    assert op.output_path == f"file://{tmp_path}/2026-01-02"
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    event = run_trigger(deferred.value.trigger)
    assert op.execute_complete(context, event) == event["task_id"]
    assert context["ti"].xcoms["stored_images"] == [
        f"file://{tmp_path}/2026-01-02/nightly/{SAFE_RUN}/edit/image-0.png"]


def test_deferred_sensor_with_soft_fail_still_fails_when_storing_fails(emulator, tmp_path):
    emulator.configure(download_url_ttl=0)
    task_id = submit(emulator.sample_url(), "[emulator: expire_after=0, seconds=0.5]")
    sensor = SeedreamTaskSensor(task_id="wait", seedream_task_id=task_id, output_path=str(tmp_path),
                                poke_interval=0.05, timeout=30, soft_fail=True)
    context = ctx()
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context)
    event = run_trigger(deferred.value.trigger)
    with pytest.raises(SeedreamStorageError):
        sensor.resume_execution("execute_complete", {"event": event}, context)


def test_asset_events_describe_the_stored_files(emulator, tmp_path):
    from airflow.sdk import Asset, AssetAlias
    from airflow.sdk.execution_time.context import OutletEventAccessors

    task_id = submit(emulator.sample_url())
    asset, alias = Asset("seedream-edits"), AssetAlias("seedream-images")
    sensor = poke_sensor(task_id, str(tmp_path), outlets=[asset, alias])
    context = ctx()
    context["outlet_events"] = OutletEventAccessors()
    sensor.execute(context)
    stored = context["ti"].xcoms["stored_images"]
    assert context["outlet_events"][asset].extra == {"seedream_task_id": task_id, "stored_images": stored}
    alias_events = context["outlet_events"][alias].asset_alias_events
    assert [e.dest_asset_key.uri for e in alias_events] == stored
    assert alias_events[0].extra == {"seedream_task_id": task_id, "image_index": 0}
