#!/usr/bin/env python3
"""Benchmark (not a test): rows per second from Arrow batches to a finished .hyper extract.

    target/alteryx-venv/bin/python hosts/alteryx/bench.py [--rows 10000000] [--batch-rows 10000,50000,100000]

Five narrow columns (int64, float64, date, bool, a short string from 1000 distinct values), in
batches as Designer sends them. Two paths are timed, each from the first batch to the closed
.hyper file (hyperd started and shut down inside the timing):

  tool     PublishToTableau through ayx-python-sdk's SdkToolTestService: run_on_record_batch for
           every batch, then run_on_complete up to the moment the extract is built; the hand-off
           of the file to the library's spool (Publisher.feed) is timed separately; nothing is
           published (no server is needed).
  builder  extract_builder.ExtractBuilder directly: append() every batch, then finish().

The batches are made before the timing starts. Run hosts/alteryx/run-tests.sh once first (it makes
the venv and copies the binding); the tool path needs target/debug/libtableau_publisher.so (or
TABLEAU_PUBLISHER_LIB).
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(HERE, "backend"))
sys.path.append(os.path.join(ROOT, "bindings", "python"))
os.environ.setdefault("TABLEAU_PUBLISHER_LIB", os.path.join(ROOT, "target", "debug", "libtableau_publisher.so"))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402


def make_batches(rows, batch_rows):
    rng = np.random.default_rng(7)
    codes = pa.array([f"C{i:04d}" for i in range(1000)])
    out = []
    for start in range(0, rows, batch_rows):
        n = min(batch_rows, rows - start)
        out.append(pa.table({
            "id": pa.array(np.arange(start, start + n, dtype=np.int64)),
            "amount": pa.array(rng.random(n) * 1000.0),
            "day": pa.array(rng.integers(0, 20000, n).astype(np.int32)).cast(pa.date32()),
            "flag": pa.array(rng.random(n) < 0.5),
            "code": codes.take(pa.array(rng.integers(0, 1000, n))),  # a plain string array, as Designer sends
        }))
    return out


def bench_builder(batches, work):
    from ayx_plugins.extract_builder import ExtractBuilder
    started = time.perf_counter()
    builder = ExtractBuilder(os.path.join(work, "bench.hyper"), work)
    for b in batches:
        builder.append(b)
    built = builder.finish()
    return time.perf_counter() - started, built.bytes, None


def bench_tool(batches, work):
    from ayx_python_sdk.core import Anchor
    from ayx_python_sdk.core.testing import SdkToolTestService
    from ayx_plugins import PublishToTableau

    marks = {}

    class Timed(PublishToTableau):
        def _spool(self, built):
            marks["built"] = time.perf_counter()
            marks["bytes"] = built.bytes
            super()._spool(built)  # the hand-off to the library (Publisher.feed of the file)
            marks["spooled"] = time.perf_counter()
            return False  # and no publish

    config = ("<Configuration><server_url>http://127.0.0.1:9</server_url><site/>"
              "<auth><method>pat</method><token_name>bench</token_name><token_secret_env>BENCH_UNSET</token_secret_env></auth>"
              f"<project>Bench</project><datasource_name>bench</datasource_name><mode>overwrite</mode>"
              f"<spool_dir>{work}</spool_dir></Configuration>")
    service = SdkToolTestService(Timed, {"Input": batches[0].schema}, {}, config)
    anchor = Anchor("Input", "1")
    started = time.perf_counter()
    for b in batches:
        service.run_on_record_batch(b, anchor)
    service.run_on_complete()
    errors = [m for m in service.io_stream if m.startswith("ERROR")]
    if errors or "built" not in marks:
        raise SystemExit(f"the tool failed: {errors or service.io_stream}")
    return marks["built"] - started, marks["bytes"], marks["spooled"] - marks["built"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--batch-rows", default="10000,50000,100000")
    ap.add_argument("--path", choices=["tool", "builder", "both"], default="both")
    args = ap.parse_args()
    paths = ["tool", "builder"] if args.path == "both" else [args.path]
    print(f"{args.rows:,} rows, 5 columns (int64, float64, date, bool, short string); "
          f"{os.cpu_count()} CPUs; Python {sys.version.split()[0]}, pyarrow {pa.__version__}")
    print(f"{'path':8} {'batch rows':>10} {'seconds':>8} {'rows/s':>12} {'.hyper MiB':>10} {'hand-off to spool':>18}")
    for batch_rows in [int(x) for x in args.batch_rows.split(",")]:
        batches = make_batches(args.rows, batch_rows)
        for path in paths:
            work = tempfile.mkdtemp(prefix="tp-alteryx-bench-")
            try:
                seconds, size, spool = (bench_tool if path == "tool" else bench_builder)(batches, work)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            spool_text = f"{spool:.2f} s ({size / spool / 2**20:,.0f} MiB/s)" if spool else "-"
            print(f"{path:8} {batch_rows:>10,} {seconds:>8.2f} {args.rows / seconds:>12,.0f} "
                  f"{size / 2**20:>10.0f} {spool_text:>18}", flush=True)


if __name__ == "__main__":
    main()
