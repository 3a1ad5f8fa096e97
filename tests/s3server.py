"""A real S3-protocol server on loopback for the tests: moto's server mode, run as its own process.

Nothing here mocks boto3, s3fs or this package in-process: the Amazon provider and s3fs talk HTTP to this server
exactly as they would to S3 (path-style URLs on ``http://127.0.0.1:<port>``), through the Airflow connection
``aws_default`` given by environment variable. ``Bucket`` reads the server back with plain boto3, the way another
program reading the bucket would.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

import requests

#: Dummy credentials: moto accepts any, and nothing real must ever be tried.
ACCESS_KEY = "moto-testing-key"
SECRET_KEY = "moto-testing-secret"
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MotoServer:
    """moto's server (``python -m moto.server``, with the one mend in ``_serve``) on a free loopback port, started
    and stopped by the test session."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def __enter__(self) -> MotoServer:
        for _ in range(3):  # the free port may be taken between the probe and the bind: try another
            port = _free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
            self.process = subprocess.Popen(
                [sys.executable, __file__, "-H", "127.0.0.1", "-p", str(port)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            self.url = f"http://127.0.0.1:{port}"
            if self._wait_ready(deadline=time.monotonic() + 60):
                return self
            self.__exit__(None, None, None)
        raise RuntimeError("the moto S3 server did not start")

    def _wait_ready(self, deadline: float) -> bool:
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if requests.get(f"{self.url}/moto-api/data.json", timeout=2).status_code == 200:
                    return True
            except requests.RequestException:
                pass
            time.sleep(0.1)
        return False

    def __exit__(self, *exc_info: Any) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def reset(self) -> None:
        """Forget every bucket and object (moto's own control endpoint)."""
        requests.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()

    def connection_json(self, conn_type: str = "aws") -> str:
        """The ``aws_default`` connection, as a user would give it by environment variable."""
        return json.dumps({
            "conn_type": conn_type,
            "login": ACCESS_KEY,
            "password": SECRET_KEY,
            "extra": {"endpoint_url": self.url, "region_name": REGION},
        })

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY)


class Bucket:
    """One bucket on the moto server, read and written with plain boto3 (not through this package or s3fs)."""

    def __init__(self, server: MotoServer, name: str) -> None:
        self.name = name
        self.client = server.client()
        self.client.create_bucket(Bucket=name)

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=data)

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def sizes(self, prefix: str = "") -> dict[str, int]:
        """Every object under ``prefix`` and its size, as a listing shows them."""
        found: dict[str, int] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix):
            for item in page.get("Contents", []):
                found[item["Key"]] = int(item["Size"])
        return found

    def uploads_in_progress(self) -> list[dict[str, Any]]:
        """Multipart uploads begun and neither completed nor aborted, with their parts so far."""
        answer = self.client.list_multipart_uploads(Bucket=self.name)
        uploads = []
        for upload in answer.get("Uploads", []):
            parts = self.client.list_parts(Bucket=self.name, Key=upload["Key"], UploadId=upload["UploadId"])
            uploads.append({"key": upload["Key"], "parts": len(parts.get("Parts", []))})
        return uploads


def _serve(argv: list[str]) -> None:
    """Run moto's server with a part's ETag computed under the part's own lock, as moto already reads its value.

    moto computes an object's ETag lazily, on first use, by seeking the object's shared buffer and reading it without
    the lock that guards every other read. Two requests at once on one part (the UploadPart answer, and a test
    listing the parts) can interleave their seek and read, and one of them caches the MD5 of a partial read. The
    following CompleteMultipartUpload then refuses the correct ETag with InvalidPart. Real S3 has no such race: on a
    loaded 2-core machine it failed 5 of 100 two-part uploads with four threads listing parts, and 1 CI run. Nothing
    else of moto is changed.
    """
    from moto.s3.models import FakeKey
    from moto.server import main

    unlocked = FakeKey.etag.fget

    def etag(key: FakeKey) -> str:
        with key.lock:
            return unlocked(key)

    FakeKey.etag = property(etag)  # type: ignore[method-assign, assignment]
    main(argv)


if __name__ == "__main__":
    _serve(sys.argv[1:])
