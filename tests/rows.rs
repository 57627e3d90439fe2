//! Rows in, a real .hyper out, as a C host sees it: `tests/c/host.c` streams CSV, Parquet and
//! Arrow streams through `tp_feed_chunk`; the published file is read back by Tableau's own
//! Hyper API and compared with the input by `tests/rows/hyper_check.py` (csv and pyarrow on
//! the other side, none of our code). Bad inputs fail before any network request, spool kept.
//!
//! Needs hyperd (`pip install -r tests/rows/requirements.txt`); without it these tests fail,
//! unless `TP_SKIP_HYPERD_TESTS=1`.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::hyper::{available as hyper_available, check, make_columnar, stored};
use common::{Env, MIB};
use serde_json::{json, Value};

fn host() -> &'static Path {
    static HOST: OnceLock<PathBuf> = OnceLock::new();
    HOST.get_or_init(|| common::c::compile("host.c", &[]))
}

struct Outcome {
    status: i32,
    stdout: String,
}

fn run_host(env: &Env, overrides: Value, input: &Path, chunk: usize) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(&config, env.config(overrides)).unwrap();
    let out = common::c::command(host())
        .arg(&config)
        .arg(input)
        .arg(chunk.to_string())
        .arg("--progress")
        .output()
        .unwrap();
    let stdout = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.code().is_some(), "the host died: {stdout}");
    let status = stdout
        .lines()
        .find_map(|l| l.strip_prefix("status "))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status: {stdout}"));
    Outcome { status, stdout }
}

fn phases(stdout: &str) -> Vec<i32> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("phase "))
        .map(|s| s.parse().unwrap())
        .collect()
}

/// Days since 1970-01-01 as (year, month, day), proleptic Gregorian.
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A CSV of `n` rows with what real exports have: quoted commas and quotes, embedded
/// newlines, non-ASCII text, empty fields (NULL), dates, timestamps, decimals, booleans.
fn write_csv(path: &Path, n: usize) {
    use std::io::Write;
    let names = [
        "\"Müller, Jürgen\"",
        "\"two\nlines\"",
        "\"say \"\"hi\"\"\"",
        "Zoë 東京",
        "plain",
        "",
    ];
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(w, "id,name,amount,day,at,flag,qty").unwrap();
    for i in 0..n as i64 {
        let name = names[(i % 6) as usize];
        let amount = match i % 11 {
            10 => String::new(),
            k => format!(
                "{}{}.{:02}",
                if k == 3 { "-" } else { "" },
                i % 100_000,
                i % 100
            ),
        };
        let (y, m, d) = civil(18_000 + i % 3000);
        let day = format!("{y:04}-{m:02}-{d:02}");
        let at = match i % 13 {
            12 => String::new(),
            _ => {
                let (y, m, d) = civil(19_000 + i % 900);
                let s = i * 37 % 86_400;
                format!(
                    "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
                    s / 3600,
                    s / 60 % 60,
                    s % 60
                )
            }
        };
        let flag = match i % 17 {
            16 => "",
            k if k % 2 == 0 => "true",
            _ => "false",
        };
        let qty = match i % 7 {
            6 => String::new(),
            _ => (i * 31 % 1000 - 500).to_string(),
        };
        writeln!(w, "{i},{name},{amount},{day},{at},{flag},{qty}").unwrap();
    }
    w.flush().unwrap();
}

fn assert_same(report: &Value, rows: u64, columns: &[(&str, &str)]) {
    assert_eq!(
        report["tables"],
        json!(["\"Extract\".\"Extract\""]),
        "{report}"
    );
    assert_eq!(report["rows"], rows, "{report}");
    let want: Vec<Value> = columns.iter().map(|(n, t)| json!([n, t])).collect();
    assert_eq!(report["columns"], json!(want), "{report}");
    assert_eq!(report["mismatches"], json!([]), "{report}");
}

#[test]
fn a_c_host_streams_200k_csv_rows_in_1_mib_chunks_and_hyper_reads_them_back() {
    if !hyper_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("nightly.csv");
    write_csv(&csv, 200_000);
    let env = reading_env();
    let out = run_host(&env, json!({"file_type": "csv"}), &csv, MIB);
    assert_eq!(out.status, 0, "{}", out.stdout);
    // Built first, then one sign-in: 8 is TP_PHASE_BUILDING_EXTRACT, 1 signing in.
    let seen = phases(&out.stdout);
    assert_eq!(seen.first(), Some(&8), "the build comes first: {seen:?}");
    assert!(seen.contains(&1), "{seen:?}");
    assert_eq!(env.count("POST", "/auth/signin"), 1, "one sign-in");
    let report = check("check-csv", &stored(&env, "Sales"), &csv);
    assert_same(
        &report,
        200_000,
        &[
            ("id", "BIG_INT"),
            ("name", "TEXT"),
            ("amount", "DOUBLE"),
            ("day", "DATE"),
            ("at", "TIMESTAMP"),
            ("flag", "BOOL"),
            ("qty", "BIG_INT"),
        ],
    );
    assert_extract(&env, "Sales", 200_000, 7);
    assert!(env.spool_files().is_empty(), "spool removed after success");
}

/// An emulator that reads what it is sent with hyperd.
fn reading_env() -> Env {
    Env::with(tableau_emulator::Config {
        read_extracts: true,
        ..Default::default()
    })
}

/// The emulator's own reading of the published file: one table, `"Extract"."Extract"`, with
/// `rows` rows and `columns` columns.
fn assert_extract(env: &Env, name: &str, rows: u64, columns: usize) {
    let d = env.datasource(name);
    let extract = d.extract.unwrap_or_else(|| {
        panic!(
            "{name}: the emulator read no extract: {:?}",
            d.extract_error
        )
    });
    assert_eq!(extract.tables.len(), 1, "{name}: {extract:?}");
    let t = extract
        .table("Extract", "Extract")
        .expect("\"Extract\".\"Extract\"");
    assert_eq!((t.rows, t.columns.len()), (rows, columns), "{name}: {t:?}");
}

#[test]
fn parquet_and_arrow_streams_from_pyarrow_publish_with_their_types() {
    if !hyper_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let parquet = dir.path().join("t.parquet");
    let arrow = dir.path().join("t.arrows");
    make_columnar(&parquet, &arrow, 50_000);
    let types = [
        ("id", "BIG_INT"),
        ("small", "SMALL_INT"),
        ("ratio", "DOUBLE"),
        ("single", "DOUBLE"),
        ("name", "TEXT"),
        ("day", "DATE"),
        ("at", "TIMESTAMP"),
        ("at_utc", "TIMESTAMP_TZ"),
        ("flag", "BOOL"),
        ("price", "NUMERIC(12, 2)"),
    ];
    for (input, name) in [(&parquet, "From Parquet"), (&arrow, "From Arrow")] {
        let env = reading_env();
        // Recognised by content: no file_type.
        let out = run_host(&env, json!({"datasource_name": name}), input, 256 * 1024);
        assert_eq!(out.status, 0, "{name}: {}", out.stdout);
        assert_eq!(env.count("POST", "/auth/signin"), 1, "{name}: one sign-in");
        let report = check("check-table", &stored(&env, name), input);
        assert_same(&report, 50_000, &types);
        assert_extract(&env, name, 50_000, types.len());
    }
}

/// Each bad input: TP_ERR_INVALID_ARGUMENT naming where, no request, the spool kept.
#[test]
fn bad_rows_are_refused_naming_where_before_any_request() {
    if !hyper_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.csv");
    write_csv(&good, 30_000);
    let text = std::fs::read_to_string(&good).unwrap();
    let parquet = dir.path().join("t.parquet");
    let arrow = dir.path().join("t.arrows");
    make_columnar(&parquet, &arrow, 20_000);
    let half = |p: &Path| {
        let b = std::fs::read(p).unwrap();
        b[..b.len() / 2].to_vec()
    };
    // Line 20,001 (the header is line 1, row i on line i+2 but for the quoted newlines of
    // every sixth name): beyond the type sample, so hyperd finds these.
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let late = lines.len() - 10;
    let with_line = |replace: &str| {
        let mut t: String = lines[..late].concat();
        t.push_str(replace);
        t.push_str(&lines[late + 1..].concat());
        t.into_bytes()
    };
    let cases: Vec<(&str, Vec<u8>, Value, &[&str])> = vec![
        (
            "ragged row in the sample",
            b"a,b\n1,2\n3,4,5\n".to_vec(),
            json!({"file_type": "csv"}),
            &["line 3"],
        ),
        (
            "ragged row late",
            with_line("1,x,2.5,2020-01-01,,true,4,9\n"),
            json!({"file_type": "csv"}),
            &["line"],
        ),
        (
            "a value that does not fit its column",
            with_line("1,x,not-a-number,2020-01-01,,true,4\n"),
            json!({"file_type": "csv"}),
            &["line", "amount"],
        ),
        (
            "invalid UTF-8",
            {
                let mut b = with_line("1,cafXX,2.5,2020-01-01,,true,4\n");
                let at = b.windows(5).position(|w| w == b"cafXX").unwrap();
                b[at + 3..at + 5].copy_from_slice(&[0xff, 0xfe]);
                b
            },
            json!({"file_type": "csv"}),
            &["UTF-8"],
        ),
        ("truncated Parquet", half(&parquet), json!({}), &["Parquet"]),
        (
            "truncated Arrow stream",
            half(&arrow),
            json!({}),
            &["Arrow"],
        ),
    ];
    for (case, bytes, overrides, words) in cases {
        let env = Env::start();
        let input = dir.path().join("bad.input");
        std::fs::write(&input, &bytes).unwrap();
        let out = run_host(&env, overrides, &input, MIB);
        assert_eq!(
            out.status, 1,
            "{case}: TP_ERR_INVALID_ARGUMENT: {}",
            out.stdout
        );
        for w in words {
            assert!(out.stdout.contains(w), "{case}: names {w}: {}", out.stdout);
        }
        assert!(env.requests().is_empty(), "{case}: no request");
        assert_eq!(env.spool_files().len(), 1, "{case}: spool kept");
        assert_eq!(env.manifests().len(), 1, "{case}: with its manifest");
    }
}

#[test]
fn without_hyperd_init_names_hyperd_path_and_the_install_command() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("x.csv");
    std::fs::write(&csv, "a\n1\n").unwrap();
    let env = Env::start();
    let missing = dir.path().join("no-hyperd-here");
    let out = run_host(
        &env,
        json!({"file_type": "csv", "hyperd_path": missing}),
        &csv,
        MIB,
    );
    assert_eq!(out.status, 2, "TP_ERR_CONFIG at init: {}", out.stdout);
    assert!(out.stdout.contains("hyperd_path"), "{}", out.stdout);
    assert!(
        out.stdout.contains("pip install tableauhyperapi"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("phase"), "nothing ran: {}", out.stdout);
    assert!(env.requests().is_empty());
}

/// Processes whose command line mentions `part` (hyperd's arguments name its private
/// directory under the spool directory).
fn processes_mentioning(part: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(part) {
            found.push(cmdline);
        }
    }
    found
}

#[test]
fn a_c_host_cancels_the_build_from_another_thread_ten_times() {
    if !hyper_available() {
        return;
    }
    static CANCEL: OnceLock<PathBuf> = OnceLock::new();
    let cancel = CANCEL.get_or_init(|| common::c::compile("cancel.c", &["-pthread"]));
    let env = Env::start();
    let dir = tempfile::tempdir().unwrap();
    // Big enough that hyperd is still loading it 300 ms after the build starts.
    let input = dir.path().join("rows.csv");
    {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        writeln!(out, "id,name,amount").unwrap();
        for i in 0..4_000_000u32 {
            writeln!(out, "{i},name {i},{}.{:02}", i % 9973, i % 100).unwrap();
        }
    }
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        env.config(json!({"datasource_name": "@NAME@", "file_type": "csv"})),
    )
    .unwrap();
    let rounds = 10;
    let out = common::c::command(cancel)
        .arg(&config)
        .arg(&input)
        .arg(rounds.to_string())
        .arg("building")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "{:?}:\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for round in 0..rounds {
        assert!(
            stdout.contains(&format!("round {round} status 13 ")),
            "round {round} was cancelled (TP_ERR_CANCELLED) within a second:\n{stdout}"
        );
    }
    assert!(
        env.requests().is_empty(),
        "a build cancelled before sign-in sends nothing: {:?}",
        env.requests()
    );
    assert_eq!(
        env.spool_files().len(),
        rounds,
        "every round's rows are kept"
    );
    assert_eq!(env.manifests().len(), rounds, "each with its manifest");
    let spool = env.spool.path().to_string_lossy().into_owned();
    let mut left = processes_mentioning(&spool);
    for _ in 0..40 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        left = processes_mentioning(&spool);
    }
    assert!(left.is_empty(), "hyperd was stopped: {left:?}");
    let partial: Vec<_> = walk(env.spool.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "hyper"))
        .collect();
    assert!(partial.is_empty(), "partial extracts removed: {partial:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
