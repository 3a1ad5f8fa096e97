"""OpenLineage for the operators and the sensor: which images a Seedream task read and wrote, and which kie tasks ran.

A dataset is named per the OpenLineage naming spec (https://openlineage.io/docs/spec/naming), the way Airflow's own
OpenLineage integration names files and buckets, so that a stored image joins up with the task that reads it next:

- object storage: ``s3://bucket`` (also ``s3a``, ``s3n``) or ``gs://bucket`` (also ``gcs``) as the namespace and the
  object key as the name; Azure keeps ``container@account.….windows.net``; any other scheme ``scheme://authority``;
- local files: ``file`` as the namespace and the absolute path as the name (``file://host`` for a remote host);
- http(s) images: ``scheme://host[:port]`` as the namespace and the path as the name.

What may be a secret never becomes part of a name: user info (an Airflow ``conn_id@``, a ``user:password@``) and
query strings (signed URLs carry their signature there) are dropped, and so are fragments.

The naming is free of I/O. ``SeedreamLineageMixin`` is the thin shell: ``get_openlineage_facets_on_complete`` reads the task
instance's own XComs (never kie.ai) and imports the OpenLineage provider only when called, returning ``None`` when
it is not installed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_seedream import models, results, uploads
from airflow_provider_seedream import exceptions as exc
from airflow_provider_seedream.version_compat import BaseOperator

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

#: The model a task reports when neither the task nor kie's record names one.
DEFAULT_MODEL = models.DEFAULT_EDIT_MODEL
#: The namespace of files on the worker's own disk (OpenLineage's naming for a local file system).
LOCAL_NAMESPACE = "file"

_S3_SCHEMES = frozenset({"s3", "s3a", "s3n"})
_GCS_SCHEMES = frozenset({"gs", "gcs"})
_AZURE_SCHEMES = frozenset({"abfs", "abfss", "wasb", "wasbs", "az", "adl"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class DatasetName:
    """An OpenLineage dataset's identity: the datasource (``namespace``) and the dataset within it (``name``)."""

    namespace: str
    name: str


def dataset_name(uri: Any) -> DatasetName | None:
    """Name the dataset ``uri`` points at (a URL, a storage URI or a local path); ``None`` if it names none."""
    if not isinstance(uri, str):
        return None
    text = uri.strip()
    if not text or "\x00" in text:
        return None
    if "://" not in text:  # a local path, made absolute as the upload makes it
        return DatasetName(LOCAL_NAMESPACE, os.path.abspath(os.path.expanduser(text)))
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:  # a port that is not a number, an unbalanced IPv6 bracket
        return None
    scheme = parts.scheme.lower()
    userinfo, _, hostport = parts.netloc.rpartition("@")
    if scheme in ("http", "https"):
        host = parts.hostname
        if not host:
            return None
        if ":" in host:  # IPv6
            host = f"[{host}]"
        shown_port = f":{port}" if port is not None and port != _DEFAULT_PORTS[scheme] else ""
        return DatasetName(f"{scheme}://{host}{shown_port}", parts.path or "/")
    if scheme == "file":
        host = hostport.lower()
        path = parts.path or "/"
        return DatasetName(LOCAL_NAMESPACE if host in ("", "localhost") else f"file://{host}", path)
    key = parts.path.lstrip("/")
    if not hostport or not key:
        return None
    if scheme in _S3_SCHEMES:
        return DatasetName(f"s3://{hostport}", key)
    if scheme in _GCS_SCHEMES:
        return DatasetName(f"gs://{hostport}", key)
    if scheme in _AZURE_SCHEMES and userinfo and hostport.lower().endswith(".windows.net"):
        # container@account.dfs.core.windows.net: the container is part of the datasource, not a credential
        return DatasetName(f"{scheme}://{userinfo.partition(':')[0]}@{hostport}", key)
    if scheme == "hdfs":
        return DatasetName(f"hdfs://{hostport}", parts.path)
    return DatasetName(f"{scheme}://{hostport}", key)


def dataset_names(uris: Iterable[Any]) -> list[DatasetName]:
    """Name each dataset once, in order, leaving out what names none."""
    named: dict[DatasetName, None] = {}
    for uri in uris:
        name = dataset_name(uri)
        if name is not None:
            named.setdefault(name)
    return list(named)


def given_inputs(image_urls: Any) -> list[Any]:
    """Return the input images an edit was given (``image_urls`` as rendered); none when it cannot be read."""
    try:
        return uploads.given_images(image_urls)
    except exc.SeedreamValidationError:
        return []


def batch_inputs(edits: Any) -> list[Any]:
    """Return the input images of every edit of a batch (``edits`` as rendered), in order."""
    if not isinstance(edits, (list, tuple)):
        return []
    return [image for item in edits if isinstance(item, dict) for image in given_inputs(item.get("image_urls"))]


@dataclass(frozen=True)
class LineageFacts:
    """What a finished task's lineage says: the images read and written, the kie tasks and their model."""

    inputs: tuple[DatasetName, ...] = ()
    outputs: tuple[DatasetName, ...] = ()
    task_ids: tuple[str, ...] = ()
    model: str = DEFAULT_MODEL


def task_ids_of(record: Any = None, task_id: Any = None, task_ids: Any = None) -> tuple[str, ...]:
    """Return the kie task ids a task's XComs name: the id in the task record a wait pushes (``seedream_task``),
    else the submitted task id (``seedream_task_id``), else a batch's ids (``seedream_task_ids``, ``None`` for an
    edit not submitted)."""
    if isinstance(record, dict) and isinstance(record.get("task_id"), str) and record["task_id"]:
        return (record["task_id"],)
    if isinstance(task_id, str) and task_id:
        return (task_id,)
    if isinstance(task_ids, list):
        return tuple(dict.fromkeys(t for t in task_ids if isinstance(t, str) and t))
    return ()


def model_of(own: Any, record: Any) -> str:
    """Return the model: the task's own setting, else the one kie's record names, else ``DEFAULT_MODEL``."""
    if isinstance(own, str) and own:
        return own
    if isinstance(record, dict) and isinstance(record.get("model"), str) and record["model"]:
        return str(record["model"])
    return DEFAULT_MODEL


class SeedreamLineageMixin(BaseOperator):
    """OpenLineage for a task that runs Seedream tasks on kie.ai: the input images it was given, the images it stored
    under ``output_path`` (XCom ``stored_images``) and a ``seedream`` run facet naming the kie task ids and model.

    Subclasses that read images override ``lineage_inputs``; ``output_path`` is set in ``__init__`` (``None`` for
    none).
    """

    output_path: Any

    def lineage_inputs(self) -> list[Any]:
        """The input images as given (URLs, local paths, storage URIs); none by default."""
        return []

    def lineage_facts(self, task_instance: Any) -> LineageFacts:
        """Read this task instance's own XComs (its own ``map_index`` for a mapped task) into ``LineageFacts``."""
        map_index = getattr(task_instance, "map_index", -1)

        def own(key: str) -> Any:
            return task_instance.xcom_pull(task_ids=self.task_id, key=key, map_indexes=map_index)

        record = own(results.XCOM_TASK)  # pushed by a wait that ended: its task id and the model kie ran
        task_ids = task_ids_of(record)
        if not task_ids:  # an operator that did not wait, or a batch
            task_ids = task_ids_of(None, own(results.XCOM_TASK_ID), own(results.XCOM_TASK_IDS))
        stored = own(results.XCOM_STORED_IMAGES) if self.output_path else None
        return LineageFacts(
            inputs=tuple(dataset_names(self.lineage_inputs())),
            outputs=tuple(dataset_names(stored if isinstance(stored, list) else [])),
            task_ids=task_ids,
            model=model_of(getattr(self, "model", None), record),
        )

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        """Return the finished task's OpenLineage datasets and run facets; ``None`` without the OpenLineage provider.

        Also called when the task failed (the provider falls back to this method): then it names what the task read
        and whatever it stored before failing.
        """
        try:
            from airflow_provider_seedream import lineage_facets
        except ImportError:  # the OpenLineage provider is an optional extra
            return None
        facts = self.lineage_facts(task_instance)
        return lineage_facets.operator_lineage(facts.inputs, facts.outputs, facts.task_ids, facts.model)


__all__ = [
    "DEFAULT_MODEL",
    "DatasetName",
    "LineageFacts",
    "SeedreamLineageMixin",
    "batch_inputs",
    "dataset_name",
    "dataset_names",
    "given_inputs",
    "model_of",
    "task_ids_of",
]
