"""Apache Airflow provider for ByteDance Seedream 4.5 image editing on kie.ai's Market API."""

from __future__ import annotations

__version__ = "0.1.0"
