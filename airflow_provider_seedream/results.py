"""What the operator and the sensor do with a finished task: the one place both hand results over."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_seedream import core

if TYPE_CHECKING:
    from airflow.sdk import Context

XCOM_TASK_ID = "seedream_task_id"
XCOM_RESULT_URLS = "result_urls"
XCOM_TASK = "seedream_task"


def deliver(operator: Any, context: Context, task: core.SeedreamTask) -> list[str]:
    """Log a succeeded task's results, push them to XCom, and return the result URLs."""
    urls = list(task.result_urls)
    seconds = (
        f"{(task.complete_time - task.create_time) / 1000:.1f} s"
        if task.complete_time and task.create_time
        else "unknown time"
    )
    operator.log.info("Seedream task %s succeeded in %s with %d result image(s): %s", task.task_id, seconds, len(urls),
                      core.describe_urls(urls))
    operator.log.info("Result URLs are temporary (kie documents about 24 h, sometimes much less): store them soon")
    ti = context["ti"]
    ti.xcom_push(key=XCOM_RESULT_URLS, value=urls)
    ti.xcom_push(key=XCOM_TASK, value=task.to_dict())
    return urls
