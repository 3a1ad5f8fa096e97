"""Create emulator tasks from a separate process (as Airflow workers would) and print one line per task.

Usage: ``python benchmarks/_submitter.py URL API_KEY COUNT RAMP_WALL_SECONDS``. Each line is ``<taskId> <created>``,
``created`` being the wall-clock time the emulator accepted the task; the benchmark starts one wait per line. The
submits are spread evenly over ``RAMP_WALL_SECONDS`` (0: as fast as the emulator takes them).
"""

from __future__ import annotations

import sys
import time

import httpx

from _common import CREATE_PATH, edit_body


def main(url: str, api_key: str, count: int, ramp: float) -> int:
    body = edit_body(url, "put the product on a white marble table")
    started = time.monotonic()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_key}"}, timeout=60) as client:
        for index in range(count):
            due = started + ramp * index / max(1, count)
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            reply = client.post(CREATE_PATH, json=body).json()
            if reply.get("code") != 200:
                print(f"createTask failed: {reply}", file=sys.stderr)
                return 1
            sys.stdout.write(f"{reply['data']['taskId']} {time.time():.6f}\n")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
