"""What the operator and the sensor do with a finished task: the one place both hand results over.

Both the operator's waits (blocking and deferred) and the sensor's (poke and deferred) end here, on the worker: the
result URLs go to XCom, the extra link learns the first one, and with ``output_path`` every image is copied to durable
storage before kie's temporary links die (``stored_images`` XCom, optional asset events).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_seedream import core, files, links

if TYPE_CHECKING:
    from airflow.sdk import Context

XCOM_TASK_ID = "seedream_task_id"
XCOM_RESULT_URLS = "result_urls"
XCOM_TASK = "seedream_task"
XCOM_STORED_IMAGES = "stored_images"


#: What a wait that ends in the triggerer returns: the result URLs (the sensor) or the kie task id (the operator).
RETURN_RESULT_URLS = "result_urls"
RETURN_TASK_ID = "task_id"


def end_xcoms(task: core.SeedreamTask, returns: str) -> dict[str, Any]:
    """Return the XComs a succeeded wait pushes when the triggerer ends the task (no resume on a worker).

    The same keys ``deliver`` pushes on a worker, plus the extra link's value (Airflow stores it under the link's
    ``xcom_key`` at the end of a worker run; with no worker run, the trigger provides it).
    """
    urls = list(task.result_urls)
    return {
        "return_value": task.task_id if returns == RETURN_TASK_ID else urls,
        XCOM_RESULT_URLS: urls,
        XCOM_TASK: task.to_dict(),
        links.SeedreamResultImageLink().xcom_key: links.link_for(urls),
    }


def describe_success(task: core.SeedreamTask) -> str:
    """The line a succeeded wait logs: how long the task took and its result URLs."""
    seconds = (
        f"{(task.complete_time - task.create_time) / 1000:.1f} s"
        if task.complete_time and task.create_time
        else "unknown time"
    )
    return (f"Seedream task {task.task_id} succeeded in {seconds} with {len(task.result_urls)} result image(s): "
            f"{core.describe_urls(task.result_urls)}")


def deliver(operator: Any, context: Context, task: core.SeedreamTask) -> list[str]:
    """Log a succeeded task's results, push them to XCom, store them under ``output_path``, return the result URLs.

    Raises ``SeedreamStorageError`` (naming the result URLs) when ``output_path`` is set and storing fails.
    """
    urls = list(task.result_urls)
    operator.log.info("%s", describe_success(task))
    output_path = getattr(operator, "output_path", None)
    if output_path:
        operator.log.info("Result URLs are temporary (kie documents about 24 h, sometimes much less): storing them "
                          "now under %s", files.redact_url(str(output_path)))
    else:
        operator.log.info("Result URLs are temporary (kie documents about 24 h, sometimes much less): store them soon "
                          "(or set output_path)")
    ti = context["ti"]
    ti.xcom_push(key=XCOM_RESULT_URLS, value=urls)
    ti.xcom_push(key=XCOM_TASK, value=task.to_dict())
    links.remember(operator, ti, urls)
    if output_path:
        from airflow_provider_seedream import storage

        stored = storage.store_results(
            operator.hook,
            task.task_id,
            urls,
            output_path=output_path,
            dag_id=getattr(ti, "dag_id", None) or getattr(operator, "dag_id", None) or "no-dag",
            run_id=getattr(ti, "run_id", None) or context.get("run_id") or "no-run",
            airflow_task_id=getattr(ti, "task_id", None) or operator.task_id,
            map_index=getattr(ti, "map_index", -1),
            log=operator.log,
        )
        uris = [image.uri for image in stored]
        ti.xcom_push(key=XCOM_STORED_IMAGES, value=uris)
        emit_asset_events(operator, context, task.task_id, uris)
    return urls


def emit_asset_events(operator: Any, context: Context, task_id: str, uris: list[str]) -> None:
    """Describe the stored files in the task's asset events, so downstream DAGs scheduled on them can find them.

    An ``Asset`` in ``outlets`` gets one event whose extra lists the stored files; an ``AssetAlias`` gets one event
    per stored file, each for an asset named by the file's URI.
    """
    outlets = list(getattr(operator, "outlets", None) or [])
    events = context.get("outlet_events") if hasattr(context, "get") else None
    if not outlets or events is None or not uris:
        return
    from airflow.sdk import Asset, AssetAlias

    summary: dict[str, Any] = {"seedream_task_id": task_id, XCOM_STORED_IMAGES: uris}
    for outlet in outlets:
        if isinstance(outlet, AssetAlias):
            for index, uri in enumerate(uris):
                events[outlet].add(Asset(files.asset_uri(uri)),
                                   extra={"seedream_task_id": task_id, "image_index": index})
        elif isinstance(outlet, Asset):
            events[outlet].extra.update(summary)
