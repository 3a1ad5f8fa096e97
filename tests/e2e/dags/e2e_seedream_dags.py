"""Small DAGs for the end-to-end tests, next to a copy of ``example_seedream_edit`` in the stack's dags folder.

Each DAG takes its prompt from ``params`` so that a test chooses the emulator's scenario per run with a directive
(``[emulator: outcome=fail, seconds=6]``); the input image comes from ``SEEDREAM_EXAMPLE_IMAGE_URL``, which the
harness points at the emulator.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_seedream.operators.seedream import SeedreamBatchEditOperator, SeedreamEditOperator
from airflow_provider_seedream.sensors.seedream import SeedreamTaskSensor

IMAGE_URL = os.environ.get("SEEDREAM_EXAMPLE_IMAGE_URL", "https://example.com/photo.png")
POLL = float(os.environ.get("SEEDREAM_EXAMPLE_POLL_INTERVAL", "0.5"))
COMMON = {
    "schedule": None,
    "start_date": pendulum.datetime(2026, 1, 1, tz="UTC"),
    "catchup": False,
    "tags": ["seedream", "e2e"],
    "params": {"prompt": Param("make it blue", type="string")},
}

# A worker that dies mid-wait is retried; on Airflow 3.3+ the retry re-attaches to the kie task of the first try.
with DAG("e2e_seedream_reattach", **COMMON):
    SeedreamEditOperator(
        task_id="edit",
        prompt="{{ params.prompt }}",
        image_urls=[IMAGE_URL],
        wait_for_completion=True,
        deferrable=False,
        poll_interval=POLL,
        timeout=120,
        retries=1,
        retry_delay=timedelta(seconds=1),
    )

# Submit, then wait in the triggerer. Retries are set on purpose: a failed remote task must not be retried.
with DAG("e2e_seedream_wait", **COMMON):
    submit = SeedreamEditOperator(task_id="edit", prompt="{{ params.prompt }}", image_urls=[IMAGE_URL])
    SeedreamTaskSensor(
        task_id="wait",
        seedream_task_id=submit.output,
        poke_interval=POLL,
        timeout=120,
        retries=2,
        retry_delay=timedelta(seconds=1),
    )

# The same with a short deadline, for a task that never finishes.
with DAG("e2e_seedream_deadline", **COMMON):
    submit = SeedreamEditOperator(task_id="edit", prompt="{{ params.prompt }}", image_urls=[IMAGE_URL])
    SeedreamTaskSensor(
        task_id="wait",
        seedream_task_id=submit.output,
        poke_interval=POLL,
        timeout=5,
        retries=2,
        retry_delay=timedelta(seconds=1),
    )

# No retries, so that the first error a malformed answer causes is the task's final word.
with DAG("e2e_seedream_malformed", **COMMON):
    submit = SeedreamEditOperator(task_id="edit", prompt="{{ params.prompt }}", image_urls=[IMAGE_URL])
    SeedreamTaskSensor(task_id="wait", seedream_task_id=submit.output, poke_interval=POLL, timeout=120)

# A mapped fan-out whose deferred sensors share one triggerer, on a connection with a poll budget of 2 queries/s
# (``seedream_scale``: the same key as ``seedream_default``): ``count`` edits of the same prompt, numbered.
with DAG("e2e_seedream_fanout", **{**COMMON, "params": {**COMMON["params"], "count": Param(4, type="integer")}}):

    @task
    def prompts(params: dict | None = None) -> list[str]:
        assert params is not None
        return [f"{params['prompt']} #{index}" for index in range(params["count"])]

    edits = SeedreamEditOperator.partial(
        task_id="edit", image_urls=[IMAGE_URL], seedream_conn_id="seedream_scale"
    ).expand(prompt=prompts())
    SeedreamTaskSensor.partial(
        task_id="wait", seedream_conn_id="seedream_scale", poke_interval=POLL, timeout=120
    ).expand(seedream_task_id=edits.output)

# A batch of ``count`` edits from one task, on a connection paced at 2 createTask per 10 s (``seedream_slow``: the
# same key), so that a test can kill the worker mid-submit; the retry must finish the batch without a duplicate.
with DAG("e2e_seedream_batch", **{**COMMON, "params": {**COMMON["params"], "count": Param(6, type="integer")}}):

    @task
    def batch_edits(params: dict | None = None) -> list[dict]:
        assert params is not None
        return [{"prompt": f"{params['prompt']} #{index}", "image_urls": [IMAGE_URL]}
                for index in range(params["count"])]

    SeedreamBatchEditOperator(
        task_id="batch",
        edits=batch_edits(),
        seedream_conn_id="seedream_slow",
        output_path=os.path.join(os.environ.get("SEEDREAM_EXAMPLE_OUTPUT_DIR", "/tmp/seedream-e2e"), "batch"),
        poll_interval=POLL,
        timeout=120,
        retries=1,
        retry_delay=timedelta(seconds=1),
    )
