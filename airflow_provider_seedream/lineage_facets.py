"""The OpenLineage objects a Seedream task's lineage becomes: datasets, the ``seedream`` run facet, ``externalQuery``.

Imported only from ``SeedreamLineageMixin.get_openlineage_facets_on_complete``, when the listener asks: importing this
module without the OpenLineage provider raises ``ImportError``, which that method turns into ``None``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.openlineage.extractors import OperatorLineage
from attrs import define
from openlineage.client.event_v2 import Dataset
from openlineage.client.facet_v2 import RunFacet, external_query_run

#: The run facet's key in the event (OpenLineage custom facets carry a prefix naming their producer).
RUN_FACET_KEY = "seedream"
#: Where the kie tasks are, as the ``externalQuery`` run facet's ``source``.
KIE_SOURCE = "kie.ai"


@define
class SeedreamRunFacet(RunFacet):
    """The kie.ai tasks behind an Airflow task's run.

    :param taskIds: the kie task ids, in submission order (one, or one per submitted edit of a batch).
    :param model: the model the tasks ran, e.g. ``seedream/4.5-edit``.
    """

    taskIds: list[str]  # noqa: N815 - OpenLineage facet fields are camelCase
    model: str


def operator_lineage(inputs: Sequence[Any], outputs: Sequence[Any], task_ids: Sequence[str],
                     model: str) -> OperatorLineage:
    """The ``OperatorLineage`` the OpenLineage listener puts into the task's event: ``inputs`` and ``outputs`` are
    dataset names (each with ``namespace`` and ``name``), ``task_ids`` the kie tasks, ``model`` their model."""
    run_facets: dict[str, RunFacet] = {}
    if task_ids:
        run_facets[RUN_FACET_KEY] = SeedreamRunFacet(taskIds=list(task_ids), model=model)
        if len(task_ids) == 1:  # the standard facet for "the job id in another system" holds exactly one
            run_facets["externalQuery"] = external_query_run.ExternalQueryRunFacet(
                externalQueryId=task_ids[0], source=KIE_SOURCE)
    return OperatorLineage(
        inputs=[Dataset(namespace=d.namespace, name=d.name) for d in inputs],
        outputs=[Dataset(namespace=d.namespace, name=d.name) for d in outputs],
        run_facets=run_facets,
    )
