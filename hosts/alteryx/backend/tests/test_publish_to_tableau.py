"""PublishToTableau through SdkToolTestService against the emulator: the extract Hyper reads back,
what the emulator stored, sign-ins, progress, and every failure as one clear Designer message."""
import decimal
import glob
import json
import os
import re
import shutil
import subprocess
import time

import numpy as np
import pyarrow as pa
import pytest
from tableauhyperapi import Connection, HyperProcess, TableName, Telemetry

from ayx_plugins import config_xml as cx
from ayx_plugins import publish_to_tableau
from conftest import PAT_SECRET, TABPUB, ToolRun, config_xml, sha256_of

ROWS_PER_BATCH = 100_000


def typed_batch(index, rows=ROWS_PER_BATCH):
    """Every type Designer sends, with nulls in every column (each column's own pattern)."""
    rng = np.random.default_rng(index)
    start = index * rows
    ids = np.arange(start, start + rows, dtype=np.int64)

    def nulls(every):
        return (ids % every) == 0

    def arr(values, typ, every):
        return pa.array(values, type=typ, mask=nulls(every))

    days = rng.integers(-700_000, 2_900_000, rows)  # years 53 .. 9909
    micros = rng.integers(-60_000_000_000_000_000, 250_000_000_000_000_000, rows)
    cents = rng.integers(-10**17, 10**17, rows)
    words = np.array(["", "a", "Zürich", "日本語", "emoji 😀", "quote \" and ' and \\", "tab\tnew\nline",
                      "x" * 300], dtype=object)
    return pa.table({
        "id": pa.array(ids),
        "byte": arr(rng.integers(0, 256, rows), pa.uint8(), 7),
        "i16": arr(rng.integers(-2**15, 2**15, rows), pa.int16(), 11),
        "i32": arr(rng.integers(-2**31, 2**31, rows), pa.int32(), 13),
        "i64": arr(rng.integers(-2**63, 2**63 - 1, rows, dtype=np.int64), pa.int64(), 17),
        "f32": arr(rng.standard_normal(rows).astype(np.float32), pa.float32(), 19),
        "f64": arr(rng.standard_normal(rows) * 1e12, pa.float64(), 23),
        "amount": pa.array([decimal.Decimal(int(c)).scaleb(-4) for c in cents], pa.decimal128(18, 4),
                           mask=nulls(29)),
        "name": arr(words[rng.integers(0, len(words), rows)], pa.string(), 31),
        "flag": arr(rng.random(rows) < 0.5, pa.bool_(), 37),
        "day": arr(days.astype(np.int32), pa.int32(), 41).cast(pa.date32()),
        "day_time": arr(micros // 1000, pa.int64(), 59).cast(pa.date64()),  # Designer's DateTime
        "at": arr(micros, pa.int64(), 43).cast(pa.timestamp("us")),
        "at_utc": arr(micros // 1000, pa.int64(), 47).cast(pa.timestamp("ms", tz="UTC")),
        "clock": arr(rng.integers(0, 86_400_000_000, rows), pa.int64(), 53).cast(pa.time64("us")),
        "nothing": pa.nulls(rows),
    })


def expected_rows(tables):
    """What Hyper must give back: the input with each column as its Hyper type reads in Python."""
    table = pa.concat_tables(tables)
    out = []
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_floating(column.type):
            column = column.cast(pa.float64())
        if pa.types.is_date64(column.type):
            column = column.cast(pa.timestamp("ms"))  # to_pylist of date64 would drop the time
        if pa.types.is_timestamp(column.type) and column.type.tz:
            column = column.cast(pa.timestamp("us", tz="UTC"))
        out.append(column.to_pylist())
    return list(zip(*out))


def hyper_rows(path, columns):
    with HyperProcess(Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU,
                      parameters={"log_dir": os.path.dirname(path)}) as hyper:
        with Connection(hyper.endpoint, path) as c:
            definition = c.catalog.get_table_definition(TableName("Extract", "Extract"))
            names = [str(col.name.unescaped) for col in definition.columns]
            types = {str(col.name.unescaped): str(col.type) for col in definition.columns}
            rows = c.execute_list_query('SELECT * FROM "Extract"."Extract" ORDER BY "id"')
    assert names == columns
    return [tuple(_py(v) for v in row) for row in rows], types


def _py(v):
    """Hyper API values as the Python values pyarrow's to_pylist gives."""
    if hasattr(v, "to_datetime"):
        return v.to_datetime()
    if hasattr(v, "to_date"):
        return v.to_date()
    return v


@pytest.fixture
def keep_built(monkeypatch, tmp_path):
    """Copies each extract the tool builds to tmp_path/built-N.hyper before it is spooled."""
    kept = []
    original = publish_to_tableau.PublishToTableau._spool

    def spool(self, built):
        copy = str(tmp_path / f"built-{len(kept)}.hyper")
        shutil.copyfile(built.path, copy)
        kept.append(copy)
        return original(self, built)

    monkeypatch.setattr(publish_to_tableau.PublishToTableau, "_spool", spool)
    return kept


def assert_no_secret(run, *secrets):
    text = run.all_text()
    for s in (PAT_SECRET,) + secrets:
        assert s not in text, f"a secret is in a Designer message:\n{text}"


def spool_files(spool_dir):
    return sorted(glob.glob(os.path.join(spool_dir, "tableau-publisher", "*")))


# --- (a) + (d): the extract, byte-exact on the server, progress ------------------------------------
def test_three_typed_batches_publish_exactly(emulator, tmp_path, keep_built):
    tables = [typed_batch(i) for i in range(3)]
    run = ToolRun(config_xml(emulator.url, str(tmp_path), datasource_name="typed", mode="create_new"))
    run.run(tables)
    assert run.errors == [], run.all_text()

    # Hyper reads back exactly the rows and columns given.
    assert len(keep_built) == 1
    rows, types = hyper_rows(keep_built[0], tables[0].column_names)
    assert rows == expected_rows(tables)
    assert types == {
        "id": "BIG_INT", "byte": "SMALL_INT", "i16": "SMALL_INT", "i32": "INT", "i64": "BIG_INT",
        "f32": "DOUBLE", "f64": "DOUBLE", "amount": "NUMERIC(18, 4)", "name": "TEXT", "flag": "BOOL",
        "day": "DATE", "day_time": "TIMESTAMP", "at": "TIMESTAMP", "at_utc": "TIMESTAMP_TZ", "clock": "TIME", "nothing": "TEXT",
    }

    # The emulator stored exactly the file built, as "typed" in Finance/Quarterly.
    [stored] = emulator.datasources("typed")
    assert stored["project_name"] == "Quarterly"
    project = emulator.get("/_emulator/project-id?site=&path=Finance/Quarterly")["id"]
    assert stored["project_id"] == project
    assert stored["file_type"] == "hyper"
    assert stored["size"] == os.path.getsize(keep_built[0])
    assert stored["sha256"] == sha256_of(keep_built[0])
    assert any(stored["sha256"] in m and "published" in m for m in run.of("INFO")), run.all_text()

    # (d) progress: reported, never backwards, ending at 1.0.
    assert len(run.progress) >= 3
    assert run.progress == sorted(run.progress)
    assert run.progress[-1] == 1.0
    assert all(0.0 <= p <= 1.0 for p in run.progress)

    # Nothing left behind: staging files gone, spool removed after success.
    time.sleep(0.5)  # the library deletes the spool on a thread of its own
    left = [p for p in os.listdir(tmp_path) if not p.startswith("built-")]
    assert all(not p.startswith("tableau-publisher-alteryx-") for p in left), left
    assert [p for p in spool_files(str(tmp_path)) if not p.endswith(".done")] == []
    assert_no_secret(run)


# --- (b): 2-second sessions and a slow upstream: one sign-in ----------------------------------------
def test_slow_upstream_with_short_sessions_signs_in_once(start_emulator, tmp_path):
    emu = start_emulator("--token-ttl-secs", "2")
    run = ToolRun(config_xml(emu.url, str(tmp_path), datasource_name="slow"))
    run.run([typed_batch(0, 1000), typed_batch(1, 1000)], between=lambda i: time.sleep(2.5))
    assert run.errors == [], run.all_text()
    assert emu.sign_ins() == 1
    [stored] = emu.datasources("slow")
    assert stored["size"] > 0


# --- (c): a wrong secret -----------------------------------------------------------------------------
def test_wrong_secret_is_one_clear_error_without_the_secret(emulator, tmp_path):
    wrong = "not-the-secret-4711"
    auth = {"method": "pat", "token_name": "ci", "token_secret": wrong}
    run = ToolRun(config_xml(emulator.url, str(tmp_path), datasource_name="wrong-secret", auth=auth))
    run.run([typed_batch(0, 1000)])
    assert len(run.errors) == 1, run.all_text()
    error = run.errors[0]
    assert "TP_ERR_AUTH" in error and "401001" in error, error
    assert not any("401001" in m for m in run.of("WARN")), run.all_text()  # said once, as the error
    assert run.phase_of_message[run.messages.index(("ERROR", error))] == "complete"
    assert_no_secret(run, wrong)
    assert emulator.datasources("wrong-secret") == []


# --- (e): bad settings, reported at once -------------------------------------------------------------
@pytest.mark.parametrize("settings, named", [
    ({"chunk_sise": "1048576"}, ['unknown key "chunk_sise"', 'did you mean "chunk_size_bytes"']),
    ({"request_timeout_secs": "soon"}, ['"request_timeout_secs"', "integer", '"soon"']),
    ({"datasource_name": None}, ['"datasource_name"']),
    ({"auth": {"method": "pat", "token_name": "ci"}}, ["token_secret_env"]),
    ({"preflight": "sometimes"}, ["<preflight>", "true or false"]),
])
def test_bad_settings_are_reported_before_any_record(emulator, tmp_path, settings, named):
    before = len(emulator.requests())
    run = ToolRun(config_xml(emulator.url, str(tmp_path), **settings))
    assert len(run.errors) == 1, run.all_text()
    assert run.phase_of_message[0] == "init" and run.messages[0][0] == "ERROR"
    for part in named:
        assert part in run.errors[0], run.errors[0]
    run.run([typed_batch(0, 100)])
    assert len(run.errors) == 1, run.all_text()  # nothing more: the tool stopped at once
    assert len(emulator.requests()) == before  # and never went to the server
    assert_no_secret(run)


def test_settings_problems_only_xml_can_have_are_listed_together(emulator, tmp_path):
    config = config_xml(emulator.url, str(tmp_path)).replace(
        "<mode>overwrite</mode>", '<mode kind="x">overwrite</mode><site>again</site>')
    run = ToolRun(config)
    assert len(run.errors) == 1
    assert "<mode> has the attribute kind" in run.errors[0]
    assert "<site> appears 2 times" in run.errors[0]


def test_preflight_reports_a_missing_project_when_the_workflow_starts(emulator, tmp_path):
    run = ToolRun(config_xml(emulator.url, str(tmp_path), project="Finance/Nowhere", preflight=True))
    assert len(run.errors) == 1 and run.phase_of_message[0] == "init", run.all_text()
    assert run.errors[0].startswith("preflight: TP_ERR_NOT_FOUND")
    assert "Nowhere" in run.errors[0]
    run.run([typed_batch(0, 100)])
    assert len(run.errors) == 1


def test_preflight_passes_then_publishes(emulator, tmp_path):
    run = ToolRun(config_xml(emulator.url, str(tmp_path), datasource_name="checked", preflight=True))
    assert run.errors == [] and any("preflight passed" in m for m in run.of("INFO")), run.all_text()
    run.run([typed_batch(0, 100)])
    assert run.errors == [], run.all_text()
    assert len(emulator.datasources("checked")) == 1


# --- (f): types Hyper cannot take --------------------------------------------------------------------
def test_unsupported_type_names_the_column(emulator, tmp_path):
    table = pa.table({"id": pa.array([1, 2]), "tags": pa.array([[1], [2, 3]], pa.list_(pa.int64()))})
    run = ToolRun(config_xml(emulator.url, str(tmp_path), datasource_name="lists"))
    run.run([table, table])
    assert len(run.errors) == 1, run.all_text()
    assert 'column "tags" has type list<item: int64>' in run.errors[0]
    assert "flatten" in run.errors[0]
    assert emulator.datasources("lists") == []
    assert not [p for p in os.listdir(tmp_path) if p.startswith("tableau-publisher-alteryx-")]


def test_a_batch_with_another_schema_is_refused(emulator, tmp_path):
    first = pa.table({"id": pa.array([1, 2]), "name": pa.array(["a", "b"])})
    later = pa.table({"id": pa.array([3]), "name": pa.array([1.5])})
    run = ToolRun(config_xml(emulator.url, str(tmp_path), datasource_name="drift"))
    run.run([first, later])
    assert len(run.errors) == 1, run.all_text()
    assert "after row 2" in run.errors[0] and 'column "name" is now double' in run.errors[0]
    assert emulator.datasources("drift") == []


@pytest.mark.parametrize("batches", [[], [typed_batch(0, 0)]], ids=["no batch", "empty batch"])
def test_no_records_publish_nothing(emulator, tmp_path, batches):
    run = ToolRun(config_xml(emulator.url, str(tmp_path), datasource_name="empty"))
    run.run(batches)
    assert run.errors == [] and any("no records" in w for w in run.of("WARN")), run.all_text()
    assert emulator.datasources("empty") == []
    assert not [p for p in os.listdir(tmp_path) if p.startswith("tableau-publisher-alteryx-")]


# --- (g): a failed publish keeps the spool, and tabpub resume publishes it ----------------------------
def test_failure_keeps_the_spool_and_names_tabpub_resume(emulator, tmp_path):
    xml = config_xml(emulator.url, str(tmp_path), datasource_name="kept", project="Finance/Later")
    run = ToolRun(xml)
    run.run([typed_batch(0, 5000)])
    assert len(run.errors) == 1, run.all_text()
    error = run.errors[0]
    assert "TP_ERR_NOT_FOUND" in error and "Later" in error
    match = re.search(r"publish it again with: (tabpub resume (\S+\.spool\.json) --config CONFIG\.json)", error)
    assert match, error
    manifest = match.group(2)
    assert os.path.exists(manifest) and os.path.exists(manifest[:-len(".json")])
    assert_no_secret(run)

    # The command works: with the project created, resume publishes the kept bytes.
    emulator.post("/_emulator/projects", {"site": "", "parent_id": emulator.get(
        "/_emulator/project-id?site=&path=Finance")["id"], "name": "Later"})
    config, _ = cx.convert(xml)
    (tmp_path / "config.json").write_text(json.dumps(config))
    kept_sha = json.load(open(manifest)).get("sha256")
    done = subprocess.run([TABPUB, "resume", manifest, "--config", str(tmp_path / "config.json")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    [stored] = emulator.datasources("kept")
    assert stored["sha256"] == kept_sha


# --- (h): the token dies mid-upload: Designer is told it signed in again --------------------------------
def test_token_expiry_mid_upload_shows_reauthentication(start_emulator, tmp_path):
    if not publish_to_tableau._accepts_log(publish_to_tableau.tp.Publisher.publish):
        pytest.skip("the Python binding's Publisher.publish() has no log= argument yet (tp_set_log_callback)")
    emu = start_emulator()
    emu.post("/_emulator/faults", {"method": "PUT", "path_contains": "/fileUploads/", "nth": 2, "times": 1,
                                   "action": {"kind": "expire_token"}})
    run = ToolRun(config_xml(emu.url, str(tmp_path), datasource_name="reauth",
                             chunk_size_bytes=65536, single_request_max_bytes=65536))
    run.run([typed_batch(0, 20000)])
    assert run.errors == [], run.all_text()
    assert emu.sign_ins() == 2
    said = [m for k, m in run.messages if k in ("WARN", "INFO")
            and re.search(r"re-?authenticat|signing in again|signed in again", m, re.I)]
    assert said, run.all_text()
    assert len(emu.datasources("reauth")) == 1
    assert_no_secret(run)


def test_a_binding_without_log_still_publishes(emulator, tmp_path, monkeypatch):
    """Before tp_set_log_callback the binding's publish() took progress= only."""
    tp = publish_to_tableau.tp
    original = tp.Publisher.publish

    def publish(self, progress=None):
        return original(self, progress=progress)

    monkeypatch.setattr(tp.Publisher, "publish", publish)
    run = ToolRun(config_xml(emulator.url, str(tmp_path), datasource_name="no-log"))
    run.run([typed_batch(0, 100)])
    assert run.errors == [], run.all_text()
    assert not any(m.startswith("signed in") for m in run.of("INFO"))
    assert run.progress[-1] == 1.0
    assert len(emulator.datasources("no-log")) == 1


def test_a_missing_library_is_one_clear_error(emulator, tmp_path, monkeypatch):
    tp = publish_to_tableau.tp
    monkeypatch.setattr(tp, "_lib", None)
    monkeypatch.setenv("TABLEAU_PUBLISHER_LIB", str(tmp_path / "nowhere.so"))
    run = ToolRun(config_xml(emulator.url, str(tmp_path)))
    run.run([typed_batch(0, 10)])
    assert len(run.errors) == 1 and run.phase_of_message[0] == "init", run.all_text()
    assert run.errors[0].startswith("cannot load the tableau-publisher library (")
    assert "TABLEAU_PUBLISHER_LIB" in run.errors[0]
