//! Rows through the real `tabpub` binary: `tabpub publish --input x.parquet` recognises Parquet
//! by its content and builds the extract; a CSV whose publish fails keeps its spool, manifest
//! and built extract, and `tabpub resume` publishes the same extract without building it again
//! (or builds it again when it is gone). The published files are read back by Tableau's own
//! Hyper API (tests/rows/hyper_check.py). Needs `pip install -r tests/rows/requirements.txt`;
//! without it these tests fail, unless `TP_SKIP_HYPERD_TESTS=1`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tableau_emulator::{Config, Emulator, Fault, FaultAction};

const CHECKER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/rows/hyper_check.py");

/// False (after saying why) when the machine cannot run these tests and was told to skip.
fn hyper_available() -> bool {
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

fn python(args: &[&dyn AsRef<std::ffi::OsStr>]) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(CHECKER)
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hyper_check failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

fn tabpub(args: &[&dyn AsRef<std::ffi::OsStr>], stdin: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tabpub"));
    cmd.args(args.iter().map(|a| a.as_ref()));
    if let Some(input) = stdin {
        cmd.stdin(std::fs::File::open(input).unwrap());
    }
    cmd.output().unwrap()
}

struct Setup {
    emu: Emulator,
    dir: tempfile::TempDir,
    config: PathBuf,
}

fn setup(name: &str, extra: serde_json::Value) -> Setup {
    let emu = Emulator::start(Config::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let mut config = serde_json::json!({
        "server_url": emu.url(),
        "site": "",
        "auth": {"method": "pat", "token_name": "ci", "token_secret": "ci-secret"},
        "project": "Finance/Quarterly",
        "datasource_name": name,
        "mode": "create_new",
        "spool_dir": spool,
        "retry": {"max_attempts": 2, "base_delay_ms": 10, "max_delay_ms": 20},
    });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    let config_path = dir.path().join("config.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    Setup {
        emu,
        dir,
        config: config_path,
    }
}

/// The stored file of the data source `name` in the emulator's data directory.
fn stored(emu: &Emulator, name: &str) -> PathBuf {
    let all = emu.datasources();
    let id = &all
        .iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("no data source {name:?} in {all:?}"))
        .id;
    let dir = emu.data_dir().join("datasources");
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

fn write_csv(path: &Path, rows: u32) {
    let mut text = String::from("id,city,amount,day\n");
    for i in 0..rows {
        let city = match i % 3 {
            0 => "\"Paris, France\"".to_owned(),
            1 => "Zürich".to_owned(),
            _ => String::new(),
        };
        text.push_str(&format!(
            "{i},{city},{}.{:02},2026-{:02}-{:02}\n",
            i % 977,
            i % 100,
            i % 12 + 1,
            i % 28 + 1
        ));
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn publish_input_parquet_is_recognised_built_and_published() {
    if !hyper_available() {
        return;
    }
    let s = setup("Parquet", serde_json::json!({}));
    let (parquet, arrow) = (
        s.dir.path().join("x.parquet"),
        s.dir.path().join("x.arrows"),
    );
    python(&[&"make-columnar", &parquet, &arrow, &"5000"]);
    let out = tabpub(
        &[&"publish", &"--config", &s.config, &"--input", &parquet],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report = python(&[&"check-table", &stored(&s.emu, "Parquet"), &parquet]);
    assert_eq!(report["rows"], 5000, "{report}");
    assert_eq!(report["mismatches"], serde_json::json!([]), "{report}");
    assert!(
        std::fs::metadata(&parquet).is_ok(),
        "the input is left in place"
    );
}

#[test]
fn resume_publishes_the_extract_already_built_or_builds_it_again_when_gone() {
    if !hyper_available() {
        return;
    }
    for extract_gone in [false, true] {
        let name = format!("Resumed rows {extract_gone}");
        let s = setup(&name, serde_json::json!({"file_type": "csv"}));
        let csv = s.dir.path().join("rows.csv");
        write_csv(&csv, 20_000);
        // The commit keeps failing: the build happened, the publish did not.
        s.emu.inject_fault(Fault {
            method: Some("POST".into()),
            path_contains: Some("/datasources".into()),
            nth: 1,
            times: 1000,
            action: FaultAction::Error {
                status: 503,
                code: "503000".into(),
                summary: "Service Unavailable".into(),
                detail: "maintenance".into(),
                retry_after: None,
            },
        });
        let out = tabpub(&[&"publish", &"--config", &s.config], Some(&csv));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(10), "TP_ERR_SERVER: {stderr}");
        let manifest_path = stderr
            .split_whitespace()
            .find(|w| w.ends_with(".spool.json"))
            .map(PathBuf::from)
            .expect("the message names the manifest");
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
        assert_eq!(manifest["rows"]["format"], "csv", "{manifest}");
        let extract = &manifest["rows"]["extract"];
        assert_eq!(extract["rows"], 20_000, "{manifest}");
        let extract_path = PathBuf::from(extract["path"].as_str().expect("the extract's path"));
        assert!(
            extract_path.is_file(),
            "the built extract is kept beside the spool"
        );
        if extract_gone {
            std::fs::remove_file(&extract_path).unwrap();
        }

        s.emu.clear_faults();
        let out = tabpub(&[&"resume", &"--config", &s.config, &manifest_path], None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let published = s
            .emu
            .datasources()
            .into_iter()
            .find(|d| d.name == name)
            .expect("published");
        if !extract_gone {
            assert_eq!(
                published.sha256,
                extract["sha256"].as_str().unwrap(),
                "the extract built before the failure is the one published (a rebuild of the same rows gives other bytes: hyperd writes fresh identifiers)"
            );
        }
        assert!(
            !extract_path.exists(),
            "the extract is removed once published"
        );
        let report = python(&[&"check-csv", &stored(&s.emu, &name), &csv]);
        assert_eq!(report["rows"], 20_000, "{report}");
        assert_eq!(report["mismatches"], serde_json::json!([]), "{report}");
        assert!(
            !manifest_path.exists(),
            "the manifest is removed once published"
        );
    }
}
