"""Imports that moved between Airflow 3 minor releases, resolved once.

The package supports Airflow 3.1 and newer: ``airflow.sdk.BaseHook`` and the async connection lookup both arrived in
3.1. Everything version-dependent is imported from here so that the other modules read the same on every version.
"""

from __future__ import annotations

from airflow import __version__ as _airflow_version
from packaging.version import Version

AIRFLOW_VERSION = Version(Version(_airflow_version).base_version)
AIRFLOW_V_3_2_PLUS = AIRFLOW_VERSION >= Version("3.2.0")
AIRFLOW_V_3_3_PLUS = AIRFLOW_VERSION >= Version("3.3.0")

from airflow.sdk import (  # noqa: E402
    BaseHook,
    BaseOperator,
    BaseOperatorLink,
    BaseSensorOperator,
    Connection,
    PokeReturnValue,
)

try:  # the Task SDK owns these in recent releases
    from airflow.sdk import conf
except ImportError:  # 3.1
    from airflow.configuration import conf  # type: ignore[no-redef,assignment]
try:
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferred,
    )
except ImportError:  # 3.1: still in core (3.3 re-exports these names there, deprecated)
    from airflow.exceptions import (  # type: ignore[no-redef]
        AirflowException,
        AirflowFailException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferred,
    )

__all__ = [
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "AIRFLOW_VERSION",
    "AirflowException",
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "BaseHook",
    "BaseOperator",
    "BaseOperatorLink",
    "BaseSensorOperator",
    "Connection",
    "PokeReturnValue",
    "TaskDeferred",
    "conf",
]
