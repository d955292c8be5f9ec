"""What an object-store inbox costs over a local folder: the same files, one `etl run` each way.

    python -m bench.object_inbox [--files 40] [--orders 50]

Starts the sandbox and an S3-compatible server (moto) on loopback, drops ``--files`` order files
of ``--orders`` orders each in a local inbox and in a bucket, runs the pipeline on each (settle 0)
and prints the seconds of both runs and the overhead per file: listing, download, archive copy
and delete, all through the real s3fs client. Loopback hides the network's latency: against a
real store add a few round trips per file.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import tempfile
import time
from pathlib import Path

from etl.deliver.client import ConnectClient
from etl.run.object_sync import ObjectSync, staged_settings
from etl.run.sync import Sync
from etl.sandbox import SandboxServer
from etl.settings.config import Secret, Settings


def orders(file: int, count: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "origin.channel_id",
            "origin.channel_store_id",
            "channel_order_id",
            "created_at",
            "channel_updated_at",
            "status",
            "fulfillment.type",
            "order_lines.channel_order_line_id",
            "order_lines.quantity",
            "order_lines.product.id",
            "order_lines.product.title",
            "order_lines.price.amount",
            "order_lines.price.currency",
            "order_lines.status",
            "order_lines.created_at",
            "order_lines.updated_at",
            "order_lines.can_cancel",
            "order_lines.can_refund",
            "order_lines.total_shipping_price.amount",
            "order_lines.total_shipping_price.currency",
        ]
    )
    for n in range(count):
        oid = f"F{file}-{n}"
        writer.writerow(
            [
                *("CH", "S1", oid, "2026-11-01T10:00:00Z", "2026-11-02T10:00:00Z", "SHIPPED"),
                *("FULFILLED_BY_SELLER", f"L-{oid}", "1", "P1", "Mug", "9.99", "EUR", "SHIPPED"),
                *("2026-11-01T09:00:00Z", "2026-11-02T09:00:00Z", "false", "true", "0", "EUR"),
            ]
        )
    return out.getvalue().encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--orders", type=int, default=50)
    args = parser.parse_args()
    import boto3
    from moto.server import ThreadedMotoServer

    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3 = boto3.client("s3", endpoint_url=endpoint)
    s3.create_bucket(Bucket="bench-inbox")
    bodies = {f"orders-{n:03d}.csv": orders(n, args.orders) for n in range(args.files)}
    seconds: dict[str, float] = {}
    try:
        for way in ("local", "s3"):
            with (
                tempfile.TemporaryDirectory() as folder,
                SandboxServer(
                    db_path=Path(folder) / "sandbox.sqlite3", client_secret="bench"
                ) as sandbox,
            ):
                root = Path(folder)
                base = Settings(
                    inbox=root / "inbox",
                    outbox=root / "outbox",
                    api_url=sandbox.api_url,
                    token_url=sandbox.token_url,
                    client_id="sandbox-client",
                    client_secret=Secret("bench"),
                    settle_seconds=0.0,
                    requests_per_second=0.0,
                    inbox_url="s3://bench-inbox/drop/" if way == "s3" else "",
                    inbox_endpoint_url=endpoint if way == "s3" else "",
                )
                base.inbox.mkdir()
                for name, body in bodies.items():
                    if way == "s3":
                        s3.put_object(Bucket="bench-inbox", Key=f"drop/{name}", Body=body)
                    else:
                        (base.inbox / name).write_bytes(body)
                started = time.perf_counter()
                if way == "s3":
                    with staged_settings(base) as staged:
                        run = ObjectSync(staged, lambda s=staged: ConnectClient(s))()
                else:
                    run = Sync(base, lambda s=base: ConnectClient(s))()
                seconds[way] = time.perf_counter() - started
                assert run.exit_code == 0 and len(run.files) == args.files, run.exit_code
    finally:
        server.stop()
    extra = (seconds["s3"] - seconds["local"]) / args.files
    print(
        f"{args.files} files x {args.orders} orders: local inbox {seconds['local']:.2f} s, "
        f"s3 inbox (moto on loopback) {seconds['s3']:.2f} s, {extra * 1000:.0f} ms more per file"
    )


if __name__ == "__main__":
    main()
