"""Builds one .hyper extract from Arrow batches, fast: no row-by-row inserts.

Batches are cast to the table's types (arrow_to_hyper), written to a Parquet file in a staging
directory, and every BYTES_PER_FILE of Arrow data the file is handed to hyperd with
`COPY "Extract"."Extract" FROM '<file>' WITH (FORMAT => 'parquet')`, on a thread of its own, so
the next file is written while hyperd reads the last one (both release the GIL). At most one
file waits, so the staging directory holds at most about three files' worth of rows. The table
is "Extract"."Extract", the name Tableau gives single-table extracts.
"""
import os
import queue
import threading
import time
from dataclasses import dataclass

import pyarrow.parquet as pq
from tableauhyperapi import (Connection, CreateMode, HyperException, HyperProcess, TableDefinition,
                             TableName, Telemetry, escape_string_literal)

from . import arrow_to_hyper

TABLE = TableName("Extract", "Extract")
# Larger files amortize each COPY and the last file's (unoverlapped) read; smaller ones keep the
# staging directory small. At 48 MiB a file of 5 narrow columns holds about 1.7 million rows.
BYTES_PER_FILE = 48 * 1024 * 1024


class ExtractError(Exception):
    """Building the extract failed (hyperd, the disk, or data Hyper refused)."""


@dataclass(frozen=True)
class BuiltExtract:
    path: str
    rows: int
    columns: int
    bytes: int
    seconds: float  # spent in append() and finish(), hyperd's start included; not the upstream's time


class ExtractBuilder:
    """One .hyper file at `path`, built from the batches given to append(), closed by finish()."""

    def __init__(self, path, staging_dir, database_version=2, bytes_per_file=BYTES_PER_FILE):
        self.path = path
        self.staging_dir = staging_dir
        self.database_version = database_version
        self.bytes_per_file = bytes_per_file
        self.plan = None
        self._dictionary_columns = []
        self.rows = 0  # rows appended
        self._copied = 0  # rows hyperd reported copied
        self._hyper = None
        self._connection = None
        self._writer = None
        self._writer_path = None
        self._writer_bytes = 0
        self._files = 0
        self._queue = queue.Queue(maxsize=1)
        self._copier = None
        self._copy_error = None
        self._busy = 0.0

    # --- the batches ---------------------------------------------------------------------------
    def append(self, table):
        """Adds a pyarrow Table (or RecordBatch). The first fixes the schema; raises
        arrow_to_hyper.UnsupportedSchema for columns Hyper cannot take or a schema that changed."""
        started = time.perf_counter()
        try:
            self._append(table)
        finally:
            self._busy += time.perf_counter() - started

    def _append(self, table):
        if self.plan is None:
            self.plan = arrow_to_hyper.plan(table.schema, self.database_version)
            # Dictionary pages for text only: on other columns they cost more than they save
            # (bench.py). No statistics: hyperd reads every row anyway.
            self._dictionary_columns = [c.name for c in self.plan.columns if str(c.hyper) == "TEXT"]
            self._start()
        else:
            problems = arrow_to_hyper.mismatch(self.plan, table.schema, self.database_version)
            if problems:
                raise arrow_to_hyper.UnsupportedSchema(
                    problems, f"a batch after row {self.rows} has another schema than the first batch "
                              f"({', '.join(c.describe() for c in self.plan.columns)})")
        self._raise_copy_error()
        if table.num_rows == 0:
            return
        conformed = arrow_to_hyper.conform(table, self.plan)
        try:
            if self._writer is None:
                self._files += 1
                self._writer_path = os.path.join(self.staging_dir, f"part-{self._files:06d}.parquet")
                # No compression: the file lives for seconds on a local disk.
                self._writer = pq.ParquetWriter(self._writer_path, self.plan.target_schema, compression="none",
                                                use_dictionary=self._dictionary_columns, write_statistics=False)
            self._writer.write_table(conformed)
        except OSError as e:
            raise ExtractError(f"cannot write the staging file {self._writer_path}: {e}; "
                               f"free some space or set <spool_dir> to a larger disk") from None
        self._writer_bytes += conformed.nbytes
        self.rows += table.num_rows
        if self._writer_bytes >= self.bytes_per_file:
            self._hand_over()

    def finish(self):
        """Copies what is left, closes the file and shuts hyperd down; returns a BuiltExtract."""
        started = time.perf_counter()
        if self.plan is None:
            raise ExtractError("no records arrived, so there is no extract")
        if self._writer is not None:
            self._hand_over()
        self._stop_copier()
        self._raise_copy_error()
        try:
            self._connection.close()
            self._connection = None
            self._hyper.close()  # the file is complete once hyperd has shut down
            self._hyper = None
        except HyperException as e:
            raise ExtractError(f"hyperd could not close {self.path}: {_hyper_message(e)}") from None
        if self._copied != self.rows:
            raise ExtractError(f"hyperd copied {self._copied} rows of the {self.rows} given")
        self._busy += time.perf_counter() - started
        return BuiltExtract(self.path, self.rows, len(self.plan.columns), os.path.getsize(self.path), self._busy)

    def abort(self):
        """Stops everything (after a failure); the staging files and the partial extract stay
        for the caller to remove with the staging directory."""
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:
                pass
            self._writer = None
        self._stop_copier()
        for closeable in (self._connection, self._hyper):
            try:
                if closeable is not None:
                    closeable.close()
            except Exception:
                pass
        self._connection = self._hyper = None

    # --- hyperd ------------------------------------------------------------------------------
    def _start(self):
        try:
            self._hyper = HyperProcess(
                Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU,
                parameters={"log_dir": self.staging_dir,
                            "default_database_version": str(self.database_version)})
            self._connection = Connection(self._hyper.endpoint, self.path, CreateMode.CREATE_AND_REPLACE)
            self._connection.catalog.create_schema(TABLE.schema_name)
            self._connection.catalog.create_table(TableDefinition(
                TABLE, [TableDefinition.Column(c.name, c.hyper) for c in self.plan.columns]))
        except HyperException as e:
            self.abort()
            raise ExtractError(f"hyperd could not create {self.path}: {_hyper_message(e)}") from None
        except OSError as e:  # no hyperd executable, or it cannot be started
            self.abort()
            raise ExtractError(f"cannot start hyperd (from the tableauhyperapi package): {e}") from None
        self._copier = threading.Thread(target=self._copy_files, name="hyper-copy", daemon=True)
        self._copier.start()

    def _hand_over(self):
        self._writer.close()
        self._writer = None
        self._writer_bytes = 0
        self._raise_copy_error()
        self._queue.put(self._writer_path)  # waits while hyperd still reads the one before

    def _copy_files(self):
        statement = f"COPY {TABLE} FROM {{}} WITH (FORMAT => 'parquet')"
        while True:
            path = self._queue.get()
            if path is None:
                return
            if self._copy_error is None:
                try:
                    self._copied += self._connection.execute_command(
                        statement.format(escape_string_literal(path)))
                except HyperException as e:
                    self._copy_error = ExtractError(
                        f"hyperd refused the rows staged in {os.path.basename(path)}: {_hyper_message(e)}")
                except Exception as e:  # never die silently: finish() reports it
                    self._copy_error = ExtractError(f"copying {os.path.basename(path)} into hyperd failed: {e!r}")
            try:
                os.remove(path)
            except OSError:
                pass

    def _stop_copier(self):
        if self._copier is not None:
            self._queue.put(None)
            self._copier.join()
            self._copier = None

    def _raise_copy_error(self):
        if self._copy_error is not None:
            raise self._copy_error


def _hyper_message(e):
    """Hyper's message and hint, without the internal context id."""
    parts = [getattr(e, "main_message", None) or str(e)]
    hint = getattr(e, "hint", None)
    if hint:
        parts.append(f"hint: {hint}")
    return " ".join(p.strip() for p in parts if p)
