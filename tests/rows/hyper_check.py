#!/usr/bin/env python3
"""The independent side of tests/rows.rs: Tableau's own Hyper API and pyarrow, not our code.

  hyper_check.py make-columnar PARQUET ARROW ROWS   write the same typed table with pyarrow
  hyper_check.py check-csv HYPER CSV                compare a published .hyper with the CSV
  hyper_check.py check-table HYPER FILE             ... with a Parquet file or an Arrow stream

check-* print one JSON object: {"rows", "columns": [[name, type]], "mismatches": [...]},
rows ordered by the first column on both sides. Exit 0 when they ran (the Rust test judges),
2 on a usage error.
"""
import csv
import datetime
import decimal
import json
import shutil
import sys
import tempfile

from tableauhyperapi import Connection, HyperProcess, Telemetry, TypeTag


def read_hyper(path):
    # hyperd writes its log into the working directory unless told otherwise.
    logs = tempfile.mkdtemp(prefix="hyper_check-")
    try:
        with HyperProcess(Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU,
                          parameters={"log_dir": logs}) as hyper:
            with Connection(hyper.endpoint, path) as conn:
                tables = [t for s in conn.catalog.get_schema_names()
                          for t in conn.catalog.get_table_names(s)]
                names = [str(t) for t in tables]
                if names != ['"Extract"."Extract"']:
                    return names, [], []
                d = conn.catalog.get_table_definition(tables[0])
                columns = [(c.name.unescaped, c.type) for c in d.columns]
                first = d.columns[0].name
                rows = conn.execute_list_query(f'SELECT * FROM {tables[0]} ORDER BY {first}')
                return names, columns, rows
    finally:
        shutil.rmtree(logs, ignore_errors=True)


def plain(value):
    """A Hyper value as a Python value comparable with what csv and pyarrow give."""
    if value is None:
        return None
    for attr in ("to_datetime", "to_date"):
        if hasattr(value, attr):
            return getattr(value, attr)()
    return value


def from_csv(text, tag):
    if text == "":
        return None
    if tag in (TypeTag.BIG_INT, TypeTag.INT, TypeTag.SMALL_INT):
        return int(text)
    if tag == TypeTag.DOUBLE:
        return float(text)
    if tag == TypeTag.NUMERIC:
        return decimal.Decimal(text)
    if tag == TypeTag.BOOL:
        return text.lower() == "true"
    if tag == TypeTag.DATE:
        return datetime.date.fromisoformat(text)
    if tag in (TypeTag.TIMESTAMP, TypeTag.TIMESTAMP_TZ):
        return datetime.datetime.fromisoformat(text.replace("T", " "))
    return text


def same(a, b):
    if isinstance(a, datetime.datetime) and isinstance(b, datetime.datetime):
        if (a.tzinfo is None) != (b.tzinfo is None):
            a, b = a.replace(tzinfo=None), b.replace(tzinfo=None)
    return a == b


def report(names, columns, hyper_rows, expected_rows):
    mismatches = []
    if len(hyper_rows) != len(expected_rows):
        mismatches.append(f"{len(hyper_rows)} rows in the .hyper, {len(expected_rows)} expected")
    for i, (got, want) in enumerate(zip(hyper_rows, expected_rows)):
        for (name, _), g, w in zip(columns, got, want):
            if not same(plain(g), w):
                mismatches.append(f"row {i} column {name}: .hyper has {plain(g)!r}, expected {w!r}")
        if len(mismatches) >= 10:
            break
    print(json.dumps({
        "tables": names,
        "rows": len(hyper_rows),
        "columns": [[n, str(t)] for n, t in columns],
        "mismatches": mismatches,
    }))


def check_csv(hyper_path, csv_path):
    names, columns, rows = read_hyper(hyper_path)
    with open(csv_path, newline="", encoding="utf-8") as f:
        records = list(csv.reader(f))[1:]
    tags = [t.tag for _, t in columns]
    expected = [[from_csv(v, tag) for v, tag in zip(r, tags)] for r in records]
    expected.sort(key=lambda r: (r[0] is None, r[0]))
    report(names, columns, rows, expected)


def read_columnar(path):
    import pyarrow.ipc
    import pyarrow.parquet
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"PAR1":
        return pyarrow.parquet.read_table(path)
    with pyarrow.ipc.open_stream(path) as reader:
        return reader.read_all()


def check_table(hyper_path, path):
    names, columns, rows = read_hyper(hyper_path)
    table = read_columnar(path).sort_by(table_first_column(path))
    expected = [list(r.values()) for r in table.to_pylist()]
    report(names, columns, rows, expected)


def table_first_column(path):
    return read_columnar(path).schema.names[0]


def make_columnar(parquet_path, arrow_path, n):
    import pyarrow as pa
    import pyarrow.ipc
    import pyarrow.parquet

    def nth(i, every):
        return i % every == every - 1

    base = datetime.datetime(2021, 3, 4, 5, 6, 7, 890000)
    utc = datetime.timezone.utc
    ids = list(range(n))
    table = pa.table({
        "id": pa.array(ids, pa.int64()),
        "small": pa.array([None if nth(i, 9) else (i % 200) - 100 for i in ids], pa.int16()),
        "ratio": pa.array([None if nth(i, 7) else i / 7.0 for i in ids], pa.float64()),
        "single": pa.array([None if nth(i, 8) else i / 4.0 for i in ids], pa.float32()),
        "name": pa.array([None if nth(i, 5) else f"Zoë, 東京 #{i}\n\"q\"" for i in ids], pa.string()),
        "day": pa.array([None if nth(i, 11) else datetime.date(2020, 1, 1) + datetime.timedelta(days=i % 4000)
                         for i in ids], pa.date32()),
        "at": pa.array([None if nth(i, 13) else base + datetime.timedelta(seconds=i * 37) for i in ids],
                       pa.timestamp("us")),
        "at_utc": pa.array([base.replace(tzinfo=utc) + datetime.timedelta(minutes=i) for i in ids],
                           pa.timestamp("ms", tz="UTC")),
        "flag": pa.array([None if nth(i, 3) else i % 2 == 0 for i in ids], pa.bool_()),
        "price": pa.array([None if nth(i, 6) else decimal.Decimal(i % 100000) / 100 for i in ids],
                          pa.decimal128(12, 2)),
    })
    pyarrow.parquet.write_table(table, parquet_path, row_group_size=max(1, n // 4))
    with pa.OSFile(arrow_path, "wb") as sink:
        with pa.ipc.new_stream(sink, table.schema) as writer:
            for batch in table.to_batches(max_chunksize=max(1, n // 5)):
                writer.write_batch(batch)


def main(argv):
    if len(argv) == 5 and argv[1] == "make-columnar":
        make_columnar(argv[2], argv[3], int(argv[4]))
    elif len(argv) == 4 and argv[1] == "check-csv":
        check_csv(argv[2], argv[3])
    elif len(argv) == 4 and argv[1] == "check-table":
        check_table(argv[2], argv[3])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
