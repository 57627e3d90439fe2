//! The emulator reads a published `.hyper` with Tableau's hyperd and reports its tables,
//! columns and row counts, checked against what Tableau's own Hyper API (Python) reports for
//! the same file. Without hyperd, or with reading off, it keeps working and says why.
//!
//! Needs hyperd (`pip install -r tests/rows/requirements.txt`); without it these tests fail,
//! unless `TP_SKIP_HYPERD_TESTS=1`.

mod common;

use std::process::Command;

use common::*;
use tableau_emulator::Config;

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/sample.hyper"
);

/// What Tableau's Hyper API says the file holds: [[schema, table, rows, [[column, TYPE, nullable]]]].
const REPORT: &str = r#"
import json, sys, tempfile
from tableauhyperapi import Connection, HyperProcess, Nullability, Telemetry
out = []
with HyperProcess(Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters={"log_dir": tempfile.mkdtemp()}) as h:
    with Connection(h.endpoint, sys.argv[1]) as c:
        for s in c.catalog.get_schema_names():
            for t in c.catalog.get_table_names(s):
                d = c.catalog.get_table_definition(t)
                rows = c.execute_scalar_query(f"SELECT COUNT(*) FROM {t}")
                cols = [[col.name.unescaped, str(col.type), col.nullability == Nullability.NULLABLE] for col in d.columns]
                out.append([t.schema_name.name.unescaped, t.name.unescaped, rows, cols])
print(json.dumps(out))
"#;

/// A column as the Hyper API reports it: name, type, nullable.
type Column = (String, String, bool);

fn hyper_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import tableauhyperapi"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok || std::env::var("TP_SKIP_HYPERD_TESTS").as_deref() == Ok("1"),
        "these tests need Tableau's hyperd: pip install -r tests/rows/requirements.txt (or set TP_SKIP_HYPERD_TESTS=1 to skip them)"
    );
    ok
}

/// `BIG_INT` / `bigint`, `NUMERIC(12, 2)` / `numeric(12,2)`: the same type.
fn same_type(hyper_api: &str, ours: &str) -> bool {
    let norm = |s: &str| s.replace([' ', '_'], "").to_ascii_lowercase();
    norm(hyper_api) == norm(ours)
}

async fn publish(emu: &tableau_emulator::Emulator, name: &str, data: &[u8]) -> String {
    let s = signin(&emu.url(), "").await;
    let project = emu.project_id("", &["Finance", "Quarterly"]).unwrap();
    let body = created(
        s.publish_file("datasourceType=hyper", name, &project, "x.hyper", data)
            .await,
    );
    attr(&body, "datasource", "id").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_hyper_is_read_as_tableaus_hyper_api_reads_it() {
    if !hyper_available() {
        return;
    }
    let emu = start(Config {
        read_extracts: true,
        ..Config::default()
    });
    let sample = std::fs::read(SAMPLE).unwrap();
    let id = publish(&emu, "Sample", &sample).await;
    let d = emu.datasources().into_iter().find(|d| d.id == id).unwrap();
    assert_eq!(d.extract_error, None);
    let extract = d.extract.expect("the extract was read");

    let out = Command::new("python3")
        .args(["-c", REPORT, SAMPLE])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected: Vec<(String, String, u64, Vec<Column>)> =
        serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        extract.tables.len(),
        expected.len(),
        "{extract:?} vs {expected:?}"
    );
    for (table, (schema, name, rows, columns)) in extract.tables.iter().zip(&expected) {
        assert_eq!(
            (&table.schema, &table.name, table.rows),
            (schema, name, *rows)
        );
        assert_eq!(table.columns.len(), columns.len(), "{table:?}");
        for (c, (cname, ctype, nullable)) in table.columns.iter().zip(columns) {
            assert_eq!((&c.name, c.nullable), (cname, *nullable), "{c:?}");
            assert!(same_type(ctype, &c.sql_type), "{c:?} vs {ctype}");
        }
    }
    assert!(extract.table("Extract", "Extract").is_some());

    // The control endpoint says the same, and the stored bytes are untouched by the read.
    let listed: serde_json::Value = serde_json::from_str(
        &control_get(&emu.url(), "datasources")
            .await
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let ds = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id.as_str())
        .unwrap();
    assert_eq!(ds["extract"]["tables"][0]["rows"], expected[0].2);
    assert_eq!(ds["sha256"], sha_hex(&sample));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_hyperd_cannot_open_says_why_and_the_emulator_keeps_working() {
    if !hyper_available() {
        return;
    }
    let emu = start(Config {
        read_extracts: true,
        ..Config::default()
    });
    let fake = hyper_file(64 * 1024, 7);
    let id = publish(&emu, "Fake", &fake).await;
    let d = emu.datasources().into_iter().find(|d| d.id == id).unwrap();
    assert_eq!(d.extract, None);
    let why = d.extract_error.expect("why it was not read");
    assert!(why.contains("hyperd cannot open it"), "{why}");
    // A real one after it still reads.
    let id = publish(&emu, "Real", &std::fs::read(SAMPLE).unwrap()).await;
    let d = emu.datasources().into_iter().find(|d| d.id == id).unwrap();
    assert!(d.extract.is_some(), "{:?}", d.extract_error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_or_without_hyperd_nothing_is_read() {
    let sample = std::fs::read(SAMPLE).unwrap();
    let off = start(Config::default());
    let id = publish(&off, "Off", &sample).await;
    let d = off.datasources().into_iter().find(|d| d.id == id).unwrap();
    assert_eq!(
        (d.extract, d.extract_error),
        (None, None),
        "off by default in the library"
    );

    let missing = start(Config {
        read_extracts: true,
        hyperd_path: Some("/nonexistent/hyperd".into()),
        ..Config::default()
    });
    let id = publish(&missing, "Missing", &sample).await;
    let d = missing
        .datasources()
        .into_iter()
        .find(|d| d.id == id)
        .unwrap();
    assert_eq!(d.extract, None);
    assert!(
        d.extract_error
            .as_deref()
            .is_some_and(|e| e.contains("hyperd not found")),
        "{:?}",
        d.extract_error
    );
    assert_eq!(d.sha256, sha_hex(&sample), "published as ever");
}
