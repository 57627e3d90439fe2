//! The independent side of the rows tests: Tableau's own Hyper API and pyarrow, through
//! tests/rows/hyper_check.py, and the file the emulator stored for a data source.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::Env;

const CHECKER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rows/hyper_check.py");

/// False (after saying why) when the machine cannot run these tests and was told to skip:
/// without tableauhyperapi and pyarrow they fail, unless `TP_SKIP_HYPERD_TESTS=1`.
pub fn available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import tableauhyperapi, pyarrow"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("TP_SKIP_HYPERD_TESTS").as_deref() == Ok("1"),
            "these tests need Tableau's hyperd and pyarrow: pip install -r tests/rows/requirements.txt (or set TP_SKIP_HYPERD_TESTS=1 to skip them)"
        );
        eprintln!("skipped: no tableauhyperapi/pyarrow for python3 (TP_SKIP_HYPERD_TESTS=1)");
    }
    ok
}

/// The same typed table, `rows` rows, written by pyarrow as Parquet and as an Arrow stream.
pub fn make_columnar(parquet: &Path, arrow: &Path, rows: usize) {
    let made = Command::new("python3")
        .arg(CHECKER)
        .arg("make-columnar")
        .arg(parquet)
        .arg(arrow)
        .arg(rows.to_string())
        .status()
        .unwrap();
    assert!(made.success(), "hyper_check.py make-columnar failed");
}

/// `check-csv` or `check-table` of a published `.hyper` against its input: the report.
pub fn check(kind: &str, hyper: &Path, input: &Path) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(CHECKER)
        .arg(kind)
        .arg(hyper)
        .arg(input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hyper_check failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The stored file of the data source `name` in the emulator's data directory.
pub fn stored(env: &Env, name: &str) -> PathBuf {
    let id = env.datasource(name).id;
    let dir = env.emu.data_dir().join("datasources");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(id.as_str())
        })
        .unwrap_or_else(|| panic!("no stored file for {id} in {}", dir.display()))
}
