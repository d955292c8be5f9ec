"""How fast `etl events` drains a queue: N order action events, then the same N again.

    python -m bench.events --events 1000

moto's SQS server on loopback (as in the tests), the real boto3 client, `etl events` as its own
process; wall clock of each pass, and the rows the pending files hold after both (exactly N).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def event(number: int) -> dict[str, Any]:
    return {
        "id": f"01BENCH{number:019d}",
        "time": "2026-12-02T10:00:00Z",
        "type": "ACCEPT",
        "data": {
            "action_id": f"bench-{number}",
            "channel_id": "CH",
            "channel_store_id": "S1",
            "channel_order_id": f"O{number}",
            "order_lines": [{"accepted": True, "channel_order_line_id": f"O{number}-1"}],
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1000)
    args = parser.parse_args()
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=endpoint)
    url = sqs.create_queue(QueueName="bench")["QueueUrl"]
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "inbox").mkdir()
        config = root / "etl.toml"
        config.write_text(
            f'[paths]\ninbox = "{root / "inbox"}"\noutbox = "{root / "outbox"}"\n'
            f'[events]\nqueue_url = "{url}"\nendpoint_url = "{endpoint}"\n'
            'region = "us-east-1"\nwait_seconds = 0\n',
            encoding="utf-8",
        )
        command = [sys.executable, "-m", "etl.cli.main", "events", "-q", "--config", str(config)]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        for label in ("new", "redelivered"):
            began = time.perf_counter()
            for start in range(0, args.events, 10):
                entries = [
                    {"Id": str(n), "MessageBody": json.dumps(event(n))}
                    for n in range(start, min(start + 10, args.events))
                ]
                sqs.send_message_batch(QueueUrl=url, Entries=entries)
            print(f"{label:>11}: sent in {time.perf_counter() - began:.2f} s", flush=True)
            began = time.perf_counter()
            subprocess.run(command, env=env, check=True)
            seconds = time.perf_counter() - began
            print(
                f"{label:>11}: {args.events} events in {seconds:.2f} s "
                f"({args.events / seconds:,.0f} events/s, process start included)",
                flush=True,
            )
        rows = 0
        for path in (root / "outbox" / "actions").glob("pending-*.csv"):
            with path.open(encoding="utf-8", newline="") as handle:
                rows += sum(1 for _ in csv.DictReader(handle))
        print(f"pending rows: {rows} (expected {args.events})")
    server.stop()
    return 0 if rows == args.events else 1


if __name__ == "__main__":
    raise SystemExit(main())
