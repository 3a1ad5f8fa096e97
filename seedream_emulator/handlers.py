"""Routing and the kie endpoints: request -> ``Reply``, with faults, API key check and rate limits in front.

Order of checks for an API request, and why:
1. count it (stats must see every request, including those that fail later);
2. queued fault, if any (it stands for the network/gateway, which answers before kie's application does);
3. Bearer key (kie: code 401 inside HTTP 200);
4. rate limit (kie: HTTP 429, rejected not queued);
5. the endpoint itself (validation -> 422, credits -> 402, ...).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import mimetypes
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote, urlsplit

from seedream_emulator import images
from seedream_emulator.config import INPUT_MIME_TYPES
from seedream_emulator.control import handle_control
from seedream_emulator.multipart import MultipartError, parse_multipart
from seedream_emulator.scenario import scenario_for_prompt
from seedream_emulator.state import EmulatorState, ImageSpec, Lookup
from seedream_emulator.validation import is_http_uri, validate_create_body
from seedream_emulator.wire import (
    CODE_MESSAGES,
    Reply,
    Request,
    envelope,
    gateway_error,
    json_reply,
    xml_error,
)

Handler = Callable[[Request], Reply]


_NOT_JSON_BODY = (
    b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>"
    b"</center><hr><center>nginx</center></body></html>\n"
)


class Dispatcher:
    """Turn ``Request`` values into ``Reply`` values against one ``EmulatorState``."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        # No thread starts before the first picture is handed to it.
        self._prerender_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="emulator-prerender")
        # API paths -> (method, endpoint name, handler). Upload paths live on kie's upload host in reality; here on
        # the same server.
        self._api_routes: dict[str, tuple[str, str, Handler]] = {
            "/api/v1/jobs/createTask": ("POST", "createTask", self._create_task),
            "/api/v1/jobs/recordInfo": ("GET", "recordInfo", self._record_info),
            "/api/v1/chat/credit": ("GET", "credit", self._credit),
            "/api/v1/common/download-url": ("POST", "download-url", self._download_url),
            "/api/file-stream-upload": ("POST", "upload", self._stream_upload),
            "/api/file-base64-upload": ("POST", "upload", self._base64_upload),
            "/api/file-url-upload": ("POST", "upload", self._url_upload),
        }
        # Paths served without a key (result, download, upload and sample files), by prefix.
        self._file_routes: tuple[tuple[str, str, Handler], ...] = (
            ("/results/", "results", self._result_file),
            ("/dl/", "results", self._download_file),
            ("/files/", "files", self._uploaded_file),
            ("/samples", "samples", self._samples),
        )

    def _envelope(self, endpoint: str, code: int, msg: str, **kwargs: Any) -> Reply:
        """kie's envelope, with recordInfo's message under the configured key (``msg`` unless set to ``message``)."""
        return envelope(endpoint, code, msg, record_info_key=self.state.config.record_info_message_key, **kwargs)

    # ------------------------------------------------------------------ routing

    def handle(self, request: Request) -> Reply:
        """Route one request; HEAD is routed like GET (the HTTP layer drops the body)."""
        path = request.path
        method = "GET" if request.method == "HEAD" else request.method
        if path.startswith("/_emulator/"):
            return handle_control(self.state, request)
        if path in self._api_routes:
            allowed, endpoint, api_handler = self._api_routes[path]
            if method != allowed:
                return gateway_error(405, "Method Not Allowed", headers={"Allow": allowed})
            return self._serve(endpoint, request, api_handler, authenticated=True)
        route = next((r for r in self._file_routes if path.startswith(r[0])), None)
        if route is None and path != "/":
            # An unknown path is 404 whatever the method (a gateway knows no route for it); only a known path
            # asked with the wrong method is 405.
            return gateway_error(404, "Not Found")
        if method != "GET":
            return gateway_error(405, "Method Not Allowed", headers={"Allow": "GET, HEAD"})
        if route is not None:
            _, endpoint, handler = route
            return self._serve(endpoint, request, handler, authenticated=False)
        if path == "/":
            return json_reply(
                {
                    "service": "seedream-emulator",
                    "endpoints": sorted(self._api_routes),
                    "samples": f"{self.state.base_url}/samples/",
                }
            )
        return gateway_error(404, "Not Found")

    def _serve(self, endpoint: str, request: Request, handler: Handler, authenticated: bool) -> Reply:
        self.state.count_request(endpoint)
        reply, reset_after = self._consume_fault(endpoint, request)
        if reply is None and authenticated:
            reply = self._admit(endpoint, request)
        if reply is None:
            reply = handler(request)
            reply.reset = reply.reset or reset_after
        self.state.count_response(endpoint, reply.counted_code)
        return reply

    def _admit(self, endpoint: str, request: Request) -> Reply | None:
        key_hash = self.state.check_key(request.header("Authorization"))
        if key_hash is None:
            return self._envelope(endpoint, 401, CODE_MESSAGES[401])
        wait = self.state.acquire_rate(endpoint, key_hash)
        if wait is not None:
            count, window = self.state.config.rate_limit(endpoint) or (0, 0.0)
            return gateway_error(
                429,
                f"Rate limit exceeded: at most {count} {endpoint} requests per {window:g} "
                f"second{'' if window == 1 else 's'} per API key",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        return None

    # ------------------------------------------------------------------ faults

    def _consume_fault(self, endpoint: str, request: Request) -> tuple[Reply | None, bool]:
        """Apply the next queued fault: a reply to send instead, and whether to reset after answering."""
        fault = self.state.take_fault(endpoint)
        if fault is None:
            return None, False
        kind = fault["kind"]
        if kind == "delay":
            time.sleep(fault["seconds"])
            return None, False
        if kind == "accept_then_reset":
            return None, True
        if kind == "reset":
            return Reply(reset=True, code=0), False
        if kind == "http":
            headers = {}
            if fault.get("retry_after") is not None:
                headers["Retry-After"] = str(math.ceil(fault["retry_after"]))
            return gateway_error(fault["status"], str(fault.get("msg") or _reason(fault["status"])), headers), False
        if kind == "body":
            code = fault["code"]
            msg = str(fault.get("msg") or CODE_MESSAGES.get(code, "error"))
            return self._envelope(endpoint, code, msg, data=None), False
        if kind == "not_json":
            return Reply(status=200, body=_NOT_JSON_BODY, content_type="text/html", code=0), False
        if kind == "echo_key":
            echoed = request.header("Authorization")
            msg = (f"Upstream refused the request (Authorization: {echoed}); "
                   f"request headers were: Authorization={echoed}")
            return self._envelope(endpoint, fault["code"], msg, data=None), False
        msg = "File uploaded successfully" if endpoint == "upload" else "success"
        return self._envelope(endpoint, 200, msg), False

    # ------------------------------------------------------------------ kie API

    def _create_task(self, request: Request) -> Reply:
        body, error = _json_body(request)
        if error is not None:
            return self._envelope("createTask", 422, f"Request body is not valid JSON: {error}", data=None)
        problem = validate_create_body(body)
        if problem is not None:
            return self._envelope("createTask", 422, problem, data=None)
        try:
            scenario = scenario_for_prompt(body["input"]["prompt"], self.state.config.default_scenario)
        except ValueError as exc:
            return self._envelope("createTask", 422, f"input.prompt: {exc}", data=None)
        if scenario.format not in images.supported_formats():
            return self._envelope(
                "createTask", 422, f"emulator cannot encode format={scenario.format} (Pillow missing)", data=None
            )
        task_id = self.state.create_task(body, scenario)
        if task_id is None:
            return self._envelope("createTask", 402, CODE_MESSAGES[402], data=None)
        return self._envelope("createTask", 200, "success", data={"taskId": task_id})

    def _record_info(self, request: Request) -> Reply:
        values = request.query.get("taskId") or [""]
        task_id = values[0].strip()
        if not task_id:
            return self._envelope("recordInfo", 400, "taskId parameter is required", data=None)
        data = self.state.record_info(task_id)
        if data is None:
            return self._envelope("recordInfo", 422, "recordInfo is null", data=None)
        if data.get("state") == "success" and self.state.config.prerender_results:
            self._prerender(task_id)
        return self._envelope("recordInfo", 200, "success", data=data)

    def _prerender(self, task_id: str) -> None:
        """Render a succeeded task's result images in the background (``prerender_results``); the image cache draws
        each picture once, so a picture already there (or being drawn) costs nothing more."""
        for spec in self.state.result_specs(task_id):
            if _result_key(spec) not in self.state.images:
                self._prerender_pool.submit(self._render, spec)

    def _credit(self, request: Request) -> Reply:
        return self._envelope("credit", 200, "success", data=self.state.balance())

    def _download_url(self, request: Request) -> Reply:
        body, error = _json_body(request)
        if error is not None:
            return self._envelope("download-url", 422, f"Request body is not valid JSON: {error}", data=None)
        url = body.get("url") if isinstance(body, dict) else None
        if not isinstance(url, str) or not url:
            return self._envelope("download-url", 422, "url is required", data=None)
        link = self.state.mint_download_url(url)
        if link is None:
            return self._envelope(
                "download-url", 422, "url must be a file URL generated by kie.ai for this account", data=None
            )
        return self._envelope("download-url", 200, "success", data=link)

    # ------------------------------------------------------------------ File Upload API

    def _stream_upload(self, request: Request) -> Reply:
        try:
            parts = parse_multipart(request.body, request.header("Content-Type"))
        except MultipartError as exc:
            return self._envelope("upload", 400, str(exc), data=None)
        file_part = parts.get("file")
        if file_part is None:
            return self._envelope("upload", 400, "file is required (multipart field 'file')", data=None)
        upload_path = parts["uploadPath"].text if "uploadPath" in parts else None
        file_name = parts["fileName"].text if "fileName" in parts else None
        return self._store_upload(file_part.data, upload_path, file_name)

    def _base64_upload(self, request: Request) -> Reply:
        body, error = _json_body(request)
        if error is not None or not isinstance(body, dict):
            return self._envelope(
                "upload", 400, f"Request body must be a JSON object ({error or 'not an object'})", data=None
            )
        encoded = body.get("base64Data")
        if not isinstance(encoded, str) or not encoded.strip():
            return self._envelope("upload", 400, "base64Data is required", data=None)
        data = _decode_base64(encoded)
        if data is None:
            return self._envelope("upload", 400, "base64Data is neither base64 nor a base64 data: URL", data=None)
        return self._store_upload(data, body.get("uploadPath"), body.get("fileName"))

    def _url_upload(self, request: Request) -> Reply:
        """``POST /api/file-url-upload`` ``{"fileUrl", "uploadPath", "fileName"}`` (File Upload API, URL method).

        kie downloads the URL itself (30 s timeout). The emulator never goes to the network: it "downloads" only
        URLs that point at itself (samples, uploaded files, results, download links) and answers any other URL with
        the error a failed download gets, body code 400.
        """
        body, error = _json_body(request)
        if error is not None or not isinstance(body, dict):
            return self._envelope(
                "upload", 400, f"Request body must be a JSON object ({error or 'not an object'})", data=None
            )
        url = body.get("fileUrl")
        if not isinstance(url, str) or not url.strip():
            return self._envelope("upload", 400, "fileUrl is required", data=None)
        url = url.strip()
        if not is_http_uri(url):
            return self._envelope("upload", 400, f"fileUrl must be an http(s) URL, got {url!r}", data=None)
        data, problem = self._fetch_own(url)
        if data is None:
            return self._envelope("upload", 400, f"Failed to download file from {url}: {problem}", data=None)
        file_name = body.get("fileName")
        if file_name is None or (isinstance(file_name, str) and not file_name.strip()):
            # kie: "automatically extracts the file name from the URL or uses the custom one".
            file_name = unquote(urlsplit(url).path.rstrip("/").rpartition("/")[2])
        return self._store_upload(data, body.get("uploadPath"), file_name)

    def _fetch_own(self, url: str) -> tuple[bytes | None, str]:
        """Return the bytes a GET of ``url`` would serve, for URLs on this emulator; else ``(None, reason)``."""
        if not self.state.is_own_url(url):
            return None, "the emulator fetches no URL outside itself (only its /samples/, /files/, /results/, /dl/)"
        path = unquote(urlsplit(url).path)
        if path.startswith("/samples/"):
            sample = images.find_sample(path[len("/samples/") :])
            if sample is None:
                return None, "HTTP 404 Not Found"
            return self.state.images.get(("sample", sample.name), lambda: images.render_sample(sample)), ""
        if path.startswith("/files/"):
            upload = self.state.get_upload(path[len("/files/") :])
            if upload.status != 200 or upload.data is None:
                return None, "HTTP 404 Not Found"
            return upload.data, ""
        if path.startswith("/results/"):
            task_id, _, name = path[len("/results/") :].partition("/")
            return self._image_bytes(self.state.result_asset(task_id, name))
        if path.startswith("/dl/"):
            token, _, name = path[len("/dl/") :].partition("/")
            return self._image_bytes(self.state.download_asset(token, name))
        return None, "HTTP 404 Not Found"

    def _image_bytes(self, lookup: Lookup) -> tuple[bytes | None, str]:
        if lookup.status != 200 or lookup.spec is None:
            return None, "HTTP 403 Forbidden" if lookup.status == 403 else "HTTP 404 Not Found"
        return self._render(lookup.spec), ""

    def _render(self, spec: ImageSpec) -> bytes:
        return self.state.images.get(_result_key(spec),
                                     lambda: images.render(spec.seed, spec.width, spec.height, spec.fmt))

    def _store_upload(self, data: bytes, upload_path: Any, file_name: Any) -> Reply:
        config = self.state.config
        path = upload_path.strip().strip("/") if isinstance(upload_path, str) else ""
        if not path:
            return self._envelope("upload", 400, "uploadPath is required", data=None)
        if "\\" in path or any(segment in ("", ".", "..") for segment in path.split("/")):
            return self._envelope("upload", 400, f"uploadPath {upload_path!r} is not a valid relative path", data=None)
        if not data:
            return self._envelope("upload", 400, "file is empty", data=None)
        if len(data) > config.upload_max_bytes:
            return self._envelope(
                "upload",
                400,
                f"file is {len(data)} bytes; the maximum is {config.upload_max_bytes} bytes (10 MB)",
                data=None,
            )
        name = file_name.strip() if isinstance(file_name, str) else ""
        if name in (".", "..") or "/" in name or "\\" in name:
            return self._envelope("upload", 400, f"fileName {file_name!r} must be a plain file name", data=None)
        mime_type = images.sniff_mime(data) or mimetypes.guess_type(name)[0] or "application/octet-stream"
        if config.upload_images_only and mime_type not in INPUT_MIME_TYPES:
            return self._envelope(
                "upload",
                400,
                f"unsupported file type {mime_type}; Seedream accepts {', '.join(INPUT_MIME_TYPES)}",
                data=None,
            )
        if not name:
            # kie: "a random file name is generated if fileName is omitted".
            name = f"{uuid.uuid4().hex[:16]}{mimetypes.guess_extension(mime_type) or '.bin'}"
        record = self.state.store_upload(path, name, data, mime_type)
        return self._envelope("upload", 200, "File uploaded successfully", data=record)

    # ------------------------------------------------------------------ served files

    def _result_file(self, request: Request) -> Reply:
        task_id, _, name = request.path[len("/results/") :].partition("/")
        return self._image_reply(self.state.result_asset(task_id, name))

    def _download_file(self, request: Request) -> Reply:
        token, _, name = request.path[len("/dl/") :].partition("/")
        return self._image_reply(self.state.download_asset(token, name))

    def _image_reply(self, lookup: Lookup) -> Reply:
        if lookup.status == 403:
            return xml_error(403, "AccessDenied", f"Access Denied: {lookup.reason}")
        if lookup.status != 200 or lookup.spec is None:
            return xml_error(404, "NoSuchKey", "The specified key does not exist.")
        spec = lookup.spec
        data = self._render(spec)
        return Reply(
            body=data,
            content_type=spec.mime_type,
            code=200,
            headers={"X-Emulator-Scaled": str(spec.downscale), "Cache-Control": "private, max-age=86400"},
        )

    def _uploaded_file(self, request: Request) -> Reply:
        lookup = self.state.get_upload(unquote(request.path[len("/files/") :]))
        if lookup.status != 200 or lookup.data is None:
            return xml_error(404, "NoSuchKey", "The specified key does not exist.")
        return Reply(body=lookup.data, content_type=lookup.mime_type or "application/octet-stream", code=200)

    def _samples(self, request: Request) -> Reply:
        name = request.path[len("/samples") :].lstrip("/")
        if not name:
            return json_reply(self._sample_listing(), code=200)
        sample = images.find_sample(unquote(name))
        if sample is None:
            return xml_error(404, "NoSuchKey", "The specified key does not exist.")
        data = self.state.images.get(("sample", sample.name), lambda: images.render_sample(sample))
        return Reply(body=data, content_type=sample.mime_type, code=200)

    def _sample_listing(self) -> dict[str, Any]:
        entries = []
        for sample in images.available_samples():
            width, height = sample.size
            entries.append(
                {
                    "name": sample.name,
                    "url": f"{self.state.base_url}/samples/{sample.name}",
                    "mimeType": sample.mime_type,
                    "width": width,
                    "height": height,
                    "aspectRatio": sample.aspect_ratio,
                    "product": sample.product,
                }
            )
        return {"samples": entries, "urls": [entry["url"] for entry in entries]}


def _json_body(request: Request) -> tuple[Any, str | None]:
    try:
        return json.loads(request.body.decode("utf-8")), None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, str(exc)


def _decode_base64(encoded: str) -> bytes | None:
    """Decode raw base64 or a ``data:<mime>;base64,<payload>`` URL (both accepted by kie's base64 upload)."""
    text = encoded.strip()
    if text.startswith("data:"):
        header, comma, text = text.partition(",")
        if not comma or not header.endswith(";base64"):
            return None
    # Accept the URL-safe alphabet and missing padding; reject anything else rather than skip it silently.
    compact = "".join(text.split()).replace("-", "+").replace("_", "/")
    compact += "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _result_key(spec: ImageSpec) -> tuple[Any, ...]:
    """The image cache's key for a result picture: what makes it look the way it does."""
    return ("result", spec.seed, spec.width, spec.height, spec.fmt)
