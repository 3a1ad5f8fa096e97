"""The operator extra link that opens a task's (first) result image.

Airflow 3 computes extra links on the worker, at the end of every run of a task (``finalize`` calls ``get_link``
with the running operator and its task instance as ``ti_key``, deferrals included) and stores the URL; the API server
only reads that value back, and no provider code runs there. So the link comes from the operator itself, which
``results.deliver`` tells the URL on the same worker, in the same process: no XCom is read at all. (Reading the
``result_urls`` XCom instead would log a "not found" error on every deferral and every submit-only run.) A run that
has no result yet, or a ``ti_key`` this operator did not run, gets no link.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_seedream.version_compat import BaseOperatorLink

#: Attribute on the operator holding ``(ti identity, url)`` for the run that just delivered results.
LINK_ATTRIBUTE = "_seedream_result_link"


def _identity(ti: Any) -> tuple[Any, ...]:
    return (getattr(ti, "dag_id", None), getattr(ti, "task_id", None), getattr(ti, "run_id", None),
            getattr(ti, "map_index", -1))


def link_for(urls: Any) -> str:
    """Return the first result URL if it is a web link, else ``""`` (Airflow then shows no link)."""
    if isinstance(urls, (list, tuple)) and urls and isinstance(urls[0], str) \
            and urls[0].startswith(("https://", "http://")):
        return urls[0]
    return ""


def remember(operator: Any, ti: Any, urls: list[str]) -> None:
    """Tell ``operator`` the link for the task instance ``ti`` it is running."""
    setattr(operator, LINK_ATTRIBUTE, (_identity(ti), link_for(urls)))


class SeedreamResultImageLink(BaseOperatorLink):
    """Opens the (first) result image of the Seedream task, on kie's temporary link (about 24 h).

    The copy under ``output_path`` is the durable one: its URI is in the ``stored_images`` XCom.
    """

    name = "Seedream result image"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        remembered = getattr(operator, LINK_ATTRIBUTE, None)
        if remembered is not None and remembered[0] == _identity(ti_key):
            return remembered[1]
        return ""
