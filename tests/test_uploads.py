"""Inputs from disk or a bucket: the pure checks (table tests), then real uploads to the emulator's File Upload API.

A bad input must cost nothing and send nothing: every invalid case asserts zero uploads and zero createTask.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
import requests

from airflow_provider_seedream import exceptions as exc
from airflow_provider_seedream import inputs, request, uploads
from seedream_emulator.multipart import parse_multipart
from airflow_provider_seedream.hooks.seedream import SeedreamHook
from airflow_provider_seedream.operators.seedream import SeedreamEditOperator
from support import DictStateStore, context, use_connection

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 24
GIF = b"GIF89a" + b"\0" * 24


@pytest.fixture
def kie(emulator):
    """The emulator; its fixture points the connection's upload host at it as well."""
    return emulator


@pytest.fixture
def photos(kie, tmp_path) -> dict[str, Path]:
    """The emulator's sample product photos (PNG, JPEG, WebP), written to a folder: format -> path."""
    listing = requests.get(f"{kie.url}/samples/", timeout=10).json()["samples"]
    found: dict[str, Path] = {}
    for sample in listing:
        kind = sample["mimeType"].split("/")[1]
        if kind not in found:
            path = tmp_path / "in" / sample["name"]
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(requests.get(sample["url"], timeout=10).content)
            found[kind] = path
    assert {"png", "jpeg", "webp"} <= set(found)
    return found


def edit(kie, image_urls, **kwargs) -> SeedreamEditOperator:
    return SeedreamEditOperator(task_id="edit", prompt=kwargs.pop("prompt", "put it on marble"),
                                image_urls=image_urls, poll_interval=0.05, **kwargs)


def sent_image_urls(kie) -> list[str]:
    tasks = kie.stats()["tasks"]
    assert len(tasks) == 1
    return next(iter(tasks.values()))["input"]["image_urls"]


# ------------------------------------------------------------------------------------------------------------ pure
@pytest.mark.parametrize(
    "value, kind",
    [
        ("https://cdn.example.com/a.png", "url"),
        ("HTTP://cdn.example.com/a.png", "url"),
        ("/data/photos/a.png", "storage"),
        ("photos/a.png", "storage"),
        ("file:///data/a.png", "storage"),
        ("s3://bucket/a.png", "storage"),
        ("s3://aws_default@bucket/a.png", "storage"),
        ("gs://bucket/a.png", "storage"),
        ("memory://bucket/a.png", "storage"),
    ],
)
def test_classify_image_input(value, kind):
    assert inputs.classify_image_input(3, value).kind == kind


@pytest.mark.parametrize("value, fragment", [("", "must be"), ("   ", "must be"), (None, "got NoneType"),
                                             (5, "got int"), ("://x", "no scheme"), ("a\x00b", "must be")])
def test_classify_refuses(value, fragment):
    with pytest.raises(exc.SeedreamValidationError) as err:
        inputs.classify_image_input(3, value)
    assert str(err.value).startswith("image_urls[3]:") and fragment in str(err.value)


@pytest.mark.parametrize(
    "size, head, content_type",
    [
        (100, PNG, "image/png"),
        (100, b"\xff\xd8\xff\xe0" + b"\0" * 12, "image/jpeg"),
        (100, b"RIFF\0\0\0\0WEBPVP8 ", "image/webp"),
        (inputs.MAX_INPUT_BYTES, PNG, "image/png"),
    ],
)
def test_valid_input_files(size, head, content_type):
    assert inputs.check_input_file("image_urls[1]", size=size, head=head) == content_type


@pytest.mark.parametrize(
    "size, head, fragment",
    [
        (inputs.MAX_INPUT_BYTES + 1, PNG, "is 10,485,761 bytes; Seedream accepts at most 10,485,760 bytes (10 MB)"),
        (0, b"", "is an empty file"),
        (100, GIF, "is a GIF image; Seedream accepts JPEG, PNG or WebP (checked by content"),
        (100, b"BM" + b"\0" * 14, "is a BMP image"),
        (100, b"%PDF-1.7", "is not an image file we recognise"),
    ],
)
def test_invalid_input_files(size, head, fragment):
    with pytest.raises(exc.SeedreamValidationError) as err:
        inputs.check_input_file("image_urls[1]", size=size, head=head)
    assert str(err.value).startswith("image_urls[1]: ") and fragment in str(err.value)
    assert err.value.field == "image_urls[1]"


def test_placeholders_are_stable_and_never_resolvable():
    a = inputs.placeholder_url("file:///a.png\x00100\x001.0")
    assert a == inputs.placeholder_url("file:///a.png\x00100\x001.0")
    assert a != inputs.placeholder_url("file:///a.png\x00101\x001.0")
    assert inputs.is_placeholder(a) and a.startswith("https://seedream-upload.invalid/")
    assert not inputs.is_placeholder("https://cdn.example.com/a.png")


def test_upload_names_are_unique_and_carry_no_user_file_name():
    assert inputs.upload_file_name("image/png", "abc") == "abc.png"
    assert inputs.upload_file_name("image/jpeg", "abc") == "abc.jpg"


def test_multipart_frame_parses_back():
    head, tail = inputs.multipart_frame("b0und", {"uploadPath": "p", "fileName": 'x"y.png'}, "file", 'x"y.png',
                                       "image/png")
    body = head + PNG + tail
    parts = parse_multipart(body, inputs.multipart_content_type("b0und"))
    assert parts["uploadPath"].text == "p" and parts["file"].data == PNG
    assert parts["file"].content_type == "image/png"


# ------------------------------------------------------------------------------------------------ uploads, for real
def test_local_files_are_uploaded_and_the_uploaded_urls_are_sent(kie, photos, logs, api_key):
    public = kie.sample_url()
    local = [str(photos["png"]), f"file://{photos['jpeg']}", photos["webp"]]  # str, file:// URI, Path object
    op = edit(kie, [public, *local], wait_for_completion=True)
    ctx = context()
    op.execute(ctx)
    assert kie.count("upload") == 3 and kie.count("createTask") == 1
    sent = sent_image_urls(kie)
    assert sent[0] == public  # public URLs pass through untouched
    assert all(url.startswith(f"{kie.url}/files/{inputs.UPLOAD_PATH}/") for url in sent[1:])
    assert len(set(sent[1:])) == 3
    assert all(photos[kind].name not in " ".join(sent[1:]) for kind in photos)  # names on kie's host are ours
    for url, kind in zip(sent[1:], ("png", "jpeg", "webp")):
        assert requests.get(url, timeout=10).content == photos[kind].read_bytes()
    assert ctx["ti"].xcoms["result_urls"]  # the task read the uploaded files and succeeded
    text = logs.text()
    for index, url in enumerate(sent[1:], start=1):
        assert f"image_urls[{index}]: uploaded file://" in text and f"-> {url}" in text
    assert api_key not in text


@pytest.mark.parametrize("case", ["gif", "too_big", "missing", "directory", "empty"])
def test_invalid_local_inputs_send_nothing(kie, photos, tmp_path, case):
    bad = tmp_path / f"bad-{case}.png"
    if case == "gif":
        bad.write_bytes(GIF)
        fragment = "is a GIF image"
    elif case == "too_big":
        with bad.open("wb") as out:  # sparse: 10 MB + 1 byte, PNG by content
            out.write(PNG)
            out.truncate(inputs.MAX_INPUT_BYTES + 1)
        fragment = "at most 10,485,760 bytes"
    elif case == "missing":
        fragment = "no such file"
    elif case == "directory":
        bad.mkdir()
        fragment = "is not a file"
    else:
        bad.write_bytes(b"")
        fragment = "is an empty file"
    op = edit(kie, [str(photos["png"]), kie.sample_url(), str(bad)])
    with pytest.raises(exc.SeedreamValidationError) as err:
        op.execute(context())
    assert str(err.value).startswith("image_urls[2]:") and fragment in str(err.value)
    assert isinstance(err.value, exc.AirflowFailException)
    assert kie.count("upload") == 0 and kie.count("createTask") == 0  # not even the valid file was uploaded


def test_too_many_images_is_refused_before_any_file_is_read(kie, monkeypatch):
    def boom(item):
        raise AssertionError("a file was read")

    monkeypatch.setattr(uploads, "inspect_input", boom)
    with pytest.raises(exc.SeedreamValidationError, match=r"image_urls: must hold 1 to 14 URLs for seedream/4.5-edit, got 15"):
        edit(kie, ["/nope.png"] * 15).execute(context())
    with pytest.raises(exc.SeedreamValidationError, match="prompt: must not be empty"):
        edit(kie, ["/nope.png"], prompt=" ").execute(context())
    assert kie.count("upload") == 0


def test_bucket_inputs_through_object_storage(kie, photos, memory_fs):
    from airflow.sdk import ObjectStoragePath

    memory_fs.pipe_file("/bucket/in/a.png", photos["png"].read_bytes())
    memory_fs.pipe_file("/bucket/in/b.webp", photos["webp"].read_bytes())
    memory_fs.pipe_file("/bucket/in/c.gif", GIF)
    with pytest.raises(exc.SeedreamValidationError, match=r"image_urls\[1\]: is a GIF image"):
        edit(kie, ["memory://bucket/in/a.png", "s3://fake_s3@bucket/in/c.gif"]).execute(context())
    assert kie.count("upload") == 0
    op = edit(kie, ["memory://bucket/in/a.png", ObjectStoragePath("s3://fake_s3@bucket/in/b.webp")],
              wait_for_completion=True)
    op.execute(context())
    sent = sent_image_urls(kie)
    assert [requests.get(u, timeout=10).content for u in sent] == [photos["png"].read_bytes(),
                                                                    photos["webp"].read_bytes()]


def test_unregistered_input_scheme_is_a_validation_error(kie):
    with pytest.raises(exc.SeedreamValidationError, match=r"image_urls\[0\]: no filesystem is registered for gs://"):
        edit(kie, ["gs://bucket/a.png"]).execute(context())
    assert kie.count("upload") == 0


def test_a_retry_reattaches_without_uploading_again(kie, photos):
    store = DictStateStore()
    first = edit(kie, [str(photos["png"])]).execute(context(store))
    assert kie.count("upload") == 1 and kie.count("createTask") == 1
    again = edit(kie, [str(photos["png"])]).execute(context(store))
    assert again == first and kie.count("upload") == 1 and kie.count("createTask") == 1
    photos["png"].write_bytes(photos["png"].read_bytes() + b"\0")  # changed input: a new edit
    changed = edit(kie, [str(photos["png"])]).execute(context(store))
    assert changed != first and kie.count("upload") == 2 and kie.count("createTask") == 2
    assert not any(inputs.is_placeholder(u) for t in kie.stats()["tasks"].values() for u in t["input"]["image_urls"])


def test_transient_upload_errors_are_retried_and_refusals_name_the_field(kie, photos):
    kie.faults("upload", {"kind": "http", "status": 503})
    hook = SeedreamHook(retry_base=0.01)
    task_id = hook.create_edit_task("p", [str(photos["png"])])  # the hook takes files too
    assert task_id and kie.count("upload") == 2
    kie.faults("upload", {"kind": "body", "code": 400, "msg": "unsupported file"})
    with pytest.raises(exc.SeedreamValidationError, match=r"image_urls\[0\]: could not upload .*unsupported file"):
        edit(kie, [str(photos["jpeg"])]).execute(context())
    assert kie.count("createTask") == 1


def test_a_file_that_changes_after_the_check_is_not_uploaded_half(kie, photos):
    prepared = uploads.prepare(request.TaskRequest("p", [str(photos["png"])]))
    photos["png"].write_bytes(photos["png"].read_bytes()[:100])
    with pytest.raises(exc.SeedreamValidationError, match=r"image_urls\[0\]: .*ended after"):
        prepared.upload(SeedreamHook(retry_base=0.01))
    assert kie.count("createTask") == 0


# ------------------------------------------------------------------------------------- streaming, memory bounded
@pytest.fixture(scope="module")
def emulator_process():
    """The emulator in its own process, so that tracemalloc sees only the uploading side."""
    proc = subprocess.Popen([sys.executable, "-m", "seedream_emulator", "--port", "0",
                             "--no-rate-limits", "--task-seconds", "0.3"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert "listening on" in line, line
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_an_upload_streams_the_file(emulator_process, tmp_path, monkeypatch, api_key):
    use_connection(monkeypatch, api_key, emulator_process, upload_base_url=emulator_process)
    big = tmp_path / "big.png"
    with big.open("wb") as out:  # a 9 MB "PNG": only its first bytes are checked
        out.write(PNG)
        out.write(os.urandom(9 * 1024 * 1024))
    size = big.stat().st_size
    prepared = uploads.prepare(request.TaskRequest("p", [str(big)]))
    hook = SeedreamHook()
    hook.settings  # noqa: B018 - read the connection outside the measurement
    small = tmp_path / "small.png"
    small.write_bytes(PNG)
    uploads.prepare(request.TaskRequest("p", [str(small)])).upload(hook)  # warm-up: imports, connection pool
    tracemalloc.start()
    started = time.perf_counter()
    try:
        sent = prepared.upload(hook)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"\nuploaded a {size / 1e6:.1f} MB input in {elapsed:.2f} s; traced peak {peak / 1e6:.2f} MB "
          f"({peak / size:.1%} of the file)")
    assert requests.get(sent.image_urls[0], timeout=30).content == big.read_bytes()
    assert peak < size / 8, f"upload peak {peak} is not far below the file size {size}"
