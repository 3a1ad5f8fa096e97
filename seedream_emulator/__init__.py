"""A local, faithful emulator of the kie.ai API used by this provider, as a real HTTP server on loopback.

Written from the API documents, not from the client code: it imports nothing from ``airflow_provider_seedream``
outside this package (and not Airflow), so agreement between client and emulator is tested rather than assumed.
Sources: the Seedream 4.5 edit createTask page (docs.kie.ai/market/seedream/4-5-edit, Chinese copy in
``shared/seed/seedream-4.5-edit-api.md``), the pages of the other Seedream models (listed per model in ``models``)
and the research notes ``shared/notes/kie-api.md`` (Get Task Details, callbacks, File Upload API, credits,
download-url, rate limits, pricing), as read for version 0.1.0 of the provider.

Start it::

    python -m seedream_emulator --port 0          # prints "seedream-emulator listening on URL"

    from seedream_emulator import EmulatorConfig, EmulatorServer
    with EmulatorServer(EmulatorConfig(task_seconds=0.5)) as emu:  # port 0: a free port
        ...  # emu.url, emu.state.stats(), emu.state.add_faults("recordInfo", [{"kind": "reset"}])

Endpoints (Bearer key required on the kie ones; any non-empty key unless ``api_keys`` is set):

- ``POST /api/v1/jobs/createTask`` - serves the Seedream family, each model checked against its own page
  (``models``): ``seedream/4.5-edit`` and ``seedream/4.5-text-to-image`` (prompt 1..3000 chars, image_urls 1..14
  http(s) URIs for the edit, aspect_ratio 1:1 4:3 3:4 16:9 9:16 2:3 3:2 21:9 and quality basic|high both required,
  nsfw_checker bool), ``seedream/5-lite-image-to-image`` and ``seedream/5-lite-text-to-image`` (the same with prompt
  3..3000), ``bytedance/seedream-v4-edit`` and ``bytedance/seedream-v4-text-to-image`` (prompt 1..5000, image_urls
  1..10 for the edit, optional image_size, image_resolution 1K|2K|4K, max_images 1..6, seed, nsfw_checker) and
  ``bytedance/seedream`` (3.0: prompt 1..5000, optional image_size, guidance_scale 1..10, seed). Also
  ``callBackUrl`` (http(s) URI). Another model -> 422 ``model ... is not served``; a bad or missing field, or a
  field the model does not have -> body code 422 naming the field and the model; non-JSON body -> 422. Charges
  per result image (6.5 credits for 4.5, 5.5 for 5-lite, 6.5 assumed for 4.0 and 3.0; ``credits_per_task`` sets
  one price for all) or answers 402 ``Credits insufficient``; success -> ``{"code": 200, "msg": "success",
  "data": {"taskId": <32 hex>}}``.
- ``GET /api/v1/jobs/recordInfo?taskId=`` - ``{"code": 200, "msg": "success", "data": ...}`` with ``data`` =
  taskId, model (the model submitted), state, param (compact JSON *string* of the createTask body as sent, defaults
  not filled in, whose ``input`` is itself a JSON string: ``{"input": "{...}", "model": ...}``), resultJson (JSON
  *string* ``{"resultUrls":[...]}`` on success, "" otherwise), failCode/failMsg (null unless failed), costTime (null
  until done, then seconds), completeTime (ms or null), createTime (ms); no updateTime, no creditsConsumed (live
  answers have neither).
  States: waiting (first 15 % of the duration) -> queuing (next 15 %) -> generating -> success|fail, by wall-clock
  time since creation. No taskId -> code 400 ``taskId parameter is required``.
- ``GET /api/v1/chat/credit`` - ``data`` = balance as a float (e.g. 993.5); failed tasks are refunded.
- ``POST /api/v1/common/download-url`` - ``{"url": <result URL from this emulator>}`` -> a fresh link valid
  20 minutes (even for an expired result URL); any other URL -> 422.
- ``POST /api/file-stream-upload`` (multipart: file, uploadPath, fileName), ``POST /api/file-base64-upload``
  (JSON: base64Data raw or ``data:`` URL, uploadPath, fileName) and ``POST /api/file-url-upload`` (JSON: fileUrl,
  uploadPath, fileName; the name defaults to the URL's last segment) - ``{"success": true, "code": 200, "msg": "File
  uploaded successfully", "data": {fileName, filePath, downloadUrl, fileSize, mimeType, uploadedAt}}``. Errors are
  body code 400 (the codes the upload docs list): missing uploadPath/file, more than 10 MB, or not JPEG/PNG/WebP
  (Seedream's input limits, applied at upload so a bad input fails early; ``upload_images_only`` turns the type
  check off). The URL upload never goes to the network: it copies only URLs of this emulator (samples, uploaded
  files, results, download links); any other URL, or one of its own that does not resolve, answers body code 400
  ``Failed to download file from <url>: ...``. In reality these live on another host; here they share the server.
- ``GET /results/<taskId>/<n>.<png|jpg|webp>`` - the result images of a successful task: one (``0``), or
  ``max_images`` of them (``0`` .. ``N-1``, each a different picture) for Seedream 4.0. Real bytes, of the requested
  shape and size class: 4.5 and 5-lite ``aspect_ratio``, with ``quality`` basic = long side 2048, high = 4096
  (3072 for 5-lite text-to-image, whose page says 3K); 4.0 ``image_size`` shape with ``image_resolution`` 1K/2K/4K
  = long side 1024/2048/4096; 3.0 ``image_size`` shape, long side 1024 for square and 2048 otherwise (assumed).
  **Scaled down**: by default the pixel size is divided by 4 for speed (header ``X-Emulator-Scaled: 4``);
  ``full_size``/``--full-size`` serves the true size (a 4K PNG is then ~12 MB). 403 once expired (``result_ttl``,
  default 24 h), 404 if unknown/not done.
- ``GET /dl/<token>/<name>`` - links minted by download-url (403 after 20 minutes).
- ``GET /files/<uploadPath>/<fileName>`` - uploaded files, same bytes and content type (404 after 3 days).
- ``GET /samples/`` (JSON list) and ``GET /samples/<name>`` - product-photo-like PNG/JPEG/WebP inputs of several
  aspect ratios, the default ``image_urls`` of the demo DAG.
- Any other path answers HTTP 404 ``{"code": 404, "msg": "Not Found"}`` whatever the method; a known path asked
  with the wrong method answers HTTP 405 with ``Allow``.

Quirks reproduced (source in brackets):

- Errors inside HTTP 200 bodies: 401 ``You do not have access permissions``, 402, 422, 400 [Getting Started page;
  newer official schemas say HTTP is 200 even on failure].
- recordInfo answers with ``msg`` like the other endpoints [live answers; OpenAPI schema]; ``record_info_message_key
  = "message"`` switches to the ``message`` of the older Get Task Details prose, to test a client reads both.
- ``{"code": 422, "msg": "recordInfo is null", "data": null}`` for unknown ids, and for a new task during its null
  window after creation: none by default (published clients query at once and work in production), set per task
  with ``null_window=`` or for all tasks with ``null_window_seconds`` [Get Task Details OpenAPI; live answers].
- ``param`` and ``resultJson`` are JSON strings, not objects [Get Task Details page]; ``input`` inside ``param``
  is a JSON string again [live answers].
- Rate limits answered with a real HTTP 429, ``Retry-After`` and ``{"code": 429, "msg": ...}``, rejected not
  queued: createTask 20 per 10 s per key (sliding window), recordInfo 10 per s per key [Getting Started;
  Get Task Details].
- Result URLs expire (403), download-url re-mints 20-minute links [Get Task Details; download-url page].
- Fractional credit balance; 6.5 credits per Seedream 4.5 image (5.5 per 5-lite image), charged per image;
  failed tasks cost 0 [pricing; callback schema].
- Callbacks: on success/fail, POST ``{"code": 200|501, "msg": "Playground task completed successfully." |
  "Playground task failed.", "data": <recordInfo data + updateTime (ms) + creditsConsumed (0 if failed)>}`` to
  ``callBackUrl`` - only to loopback hosts (others are recorded, not sent), best effort, in a background thread;
  with ``webhook_hmac_key`` set, signed with ``X-Webhook-Timestamp`` / ``X-Webhook-Signature`` =
  Base64(HMAC-SHA256(key, taskId + "." + timestamp)) [market callback schema; webhook-verification page].
- An input URL that points at this emulator but does not resolve (unknown sample/file, expired result) makes the
  task end in ``fail`` with failCode "422" and ``Failed to download image from <url>: ...``. Foreign hosts are never
  fetched and assumed fine.

Per-task scenarios, as a directive anywhere in the prompt, e.g. ``[emulator: outcome=fail, fail_code=500,
fail_msg=Internal error, seconds=2.5, format=jpeg, expire_after=0]`` (or ``EmulatorConfig.default_scenario`` for
prompts without one). Keys: ``outcome`` = success (default) | fail (failCode/failMsg default "500" / "Internal
server error, please try again later") | never (stays generating) | empty (success, ``resultUrls: []``) |
bad_result_json (success, resultJson cut off) | unknown_state (state ``paused`` forever) | slow (10x duration);
``fail_code``; ``fail_msg`` (no commas); ``seconds`` (duration); ``format`` = png | jpeg | webp; ``expire_after``
(result URL lifetime after completion); ``polls`` (end on the N-th visible recordInfo poll instead of by time);
``null_window`` (seconds after creation during which recordInfo answers ``recordInfo is null``).
An unknown key or value is rejected with code 422, so typos in tests do not pass silently.

Control API (plain JSON, no API key, loopback clients only):

- ``GET /_emulator/stats`` - ``requests`` (per endpoint: createTask, recordInfo, credit, download-url, upload,
  results, samples, files), ``responses`` (per endpoint, per code), ``tasks`` (per taskId: state, model, images,
  outcome, created, completed, seconds, polls, input, ...), ``created_task_ids``, ``per_second`` (per endpoint:
  unix second -> count), ``rate_limited`` (429s sent per endpoint, from the limiter or from faults),
  ``faults_served``, ``faults_pending``, ``auth_keys_seen_count`` (keys are kept only as hashes, never echoed),
  ``auth_failures``, ``callbacks``, ``credits``, ``config``.
- ``POST /_emulator/reset`` - clear tasks, uploads, links, counters, faults, limits; restore the balance.
- ``GET|POST /_emulator/config`` - read / change ``EmulatorConfig`` fields at run time, e.g. ``{"task_seconds": 1,
  "default_scenario": {"outcome": "fail"}, "rate_limits": false, "record_info_message_key": "message"}``.
- ``GET|POST /_emulator/faults`` - queue transient faults: ``{"endpoint": "recordInfo", "faults": [...]}``, one
  consumed per matching request, in order, before the key check. Endpoints: createTask, recordInfo, credit,
  download-url, upload, results (also samples, files). Kinds: ``{"kind": "http", "status": 429, "retry_after": 1}``,
  ``{"kind": "body", "code": 455}``, ``{"kind": "reset"}`` (TCP RST, SO_LINGER 0), ``{"kind": "delay",
  "seconds": 5}`` (then answer normally), ``{"kind": "not_json"}`` (HTML body), ``{"kind": "missing_data"}``, ``{"kind": "echo_key",
  "code": 500}`` (a ``msg`` repeating the request's Authorization header), and
  for createTask ``{"kind": "accept_then_reset"}`` (task created and charged, connection reset). In process:
  ``emu.state.add_faults(endpoint, [fault, ...])``.
- ``POST /_emulator/credits`` ``{"balance": 3.0}`` - set the balance; ``GET /_emulator/health``.

What ``time_scale`` scales (wall seconds = emulated seconds x time_scale): task durations (``task_seconds``, the
distribution, ``seconds=``, slow), ``null_window_seconds`` and ``null_window=``, the rate-limit windows (10 s and
1 s; the counts stay 20 and 10), ``result_ttl``, ``expire_after``, ``download_url_ttl`` (20 min), ``upload_ttl``
(3 days). Not scaled: the ``delay`` fault and ``retry_after`` of an ``http`` fault (they target real client
timeouts), the callback timeout, and reported timestamps (always real wall-clock milliseconds). ``Retry-After``
from the limiter is the scaled wait, rounded up to whole seconds, at least 1.
"""

from __future__ import annotations

from seedream_emulator.config import EmulatorConfig
from seedream_emulator.faults import ENDPOINTS, FAULT_KINDS
from seedream_emulator.scenario import OUTCOMES, Scenario
from seedream_emulator.server import EmulatorServer
from seedream_emulator.state import EmulatorState

__all__ = [
    "ENDPOINTS",
    "FAULT_KINDS",
    "OUTCOMES",
    "EmulatorConfig",
    "EmulatorServer",
    "EmulatorState",
    "Scenario",
]
