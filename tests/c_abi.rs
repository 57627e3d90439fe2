//! Compiles `tests/c/publish_test.c` against the committed header with `-Wall -Wextra -Werror`
//! (as C11 and as C++17), links it to the cdylib, and runs it against the emulator.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{sha256_hex, Env};
use tableau_emulator::FaultAction;

/// `target/<profile>/deps/`, where `cargo test` builds the cdylib next to this test binary
/// (the copy in `target/<profile>/` is refreshed only by `cargo build`, so it may be stale).
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().to_path_buf()
}

fn compile(compiler: &str, extra: &[&str], out: &Path) {
    compile_source(compiler, extra, "tests/c/publish_test.c", out)
}

fn compile_source(compiler: &str, extra: &[&str], source: &str, out: &Path) {
    let root = env!("CARGO_MANIFEST_DIR");
    let lib = lib_dir();
    assert!(
        lib.join("libtableau_publisher.so").exists(),
        "cdylib not found in {}",
        lib.display()
    );
    let status = Command::new(compiler)
        .args(extra)
        .args([
            "-Wall",
            "-Wextra",
            "-Werror",
            "-g",
            "-fsanitize=address,undefined",
            "-fno-omit-frame-pointer",
        ])
        .arg(format!("-I{root}/include"))
        .arg(format!("-I{root}/bindings/cpp"))
        .arg(format!("{root}/{source}"))
        .arg(format!("-L{}", lib.display()))
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-ltableau_publisher")
        .arg("-o")
        .arg(out)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(status.success(), "{compiler} failed to compile the C test");
}

/// Runs a compiled test program against a fresh emulator prepared by `setup`; it must report no
/// failures. Returns the emulator and the fixture's sha256 so the caller can check what was
/// stored.
fn run(binary: &Path, name: &str, setup: impl FnOnce(&Env)) -> (Env, String) {
    run_with(binary, name, &[], setup)
}

/// [`run`] with `extra` arguments after the usual four.
fn run_with(binary: &Path, name: &str, extra: &[&Path], setup: impl FnOnce(&Env)) -> (Env, String) {
    let env = Env::start();
    setup(&env);
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sample.hyper");
    let sha = sha256_hex(&std::fs::read(fixture).unwrap());
    let out = Command::new(binary)
        .args([
            &env.emu.url(),
            &env.spool.path().display().to_string(),
            fixture,
            &sha,
        ])
        .args(extra)
        // Rust's runtime keeps some allocations until exit; leaks are not what this checks.
        .env("ASAN_OPTIONS", "detect_leaks=0")
        // cargo puts target/<profile> (where a stale copy from an older `cargo build` may sit)
        // on LD_LIBRARY_PATH, which wins over the rpath: load the library this test run built.
        .env("LD_LIBRARY_PATH", lib_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    (env, sha)
}

fn c_test(compiler: &str, flags: &[&str], name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("publish_test");
    compile(compiler, flags, &bin);
    let (env, sha) = run(&bin, name, |_| {});
    assert_eq!(env.datasource("From C").sha256, sha);
    assert_eq!(
        env.datasource("From F").sha256,
        sha,
        "published in place with tp_feed_file"
    );
}

#[test]
fn c_program_publishes_and_checks_error_paths() {
    c_test("cc", &["-std=c11", "-x", "c"], "C test");
}

#[test]
fn same_program_compiles_and_runs_as_cpp() {
    c_test("c++", &["-std=c++17", "-x", "c++"], "C++ test");
}

#[test]
fn cpp_wrapper_publishes_and_throws() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("test_wrapper");
    compile_source(
        "c++",
        &["-std=c++17", "-pthread"],
        "bindings/cpp/test_wrapper.cpp",
        &bin,
    );
    // An Arrow engine's rows too: an Arrow IPC stream made by pyarrow (when the machine has
    // hyperd and pyarrow; scripts/test-windows runs the wrapper without it).
    let rows = tempfile::tempdir().unwrap();
    let (parquet, arrow) = (rows.path().join("t.parquet"), rows.path().join("t.arrows"));
    let with_rows = common::hyper::available();
    if with_rows {
        common::hyper::make_columnar(&parquet, &arrow, 3000);
    }
    let extra: Vec<&Path> = if with_rows { vec![&arrow] } else { vec![] };
    // The one overwrite publish, which the wrapper test cancels from a second thread, is read
    // at 16 KiB/s: 8 s for the fixture, unless cancelled.
    let (env, sha) = run_with(&bin, "C++ wrapper test", &extra, |env| {
        env.fault(
            "POST",
            "/datasources?overwrite=true",
            1,
            1,
            FaultAction::SlowBody {
                bytes_per_sec: 16 * 1024,
            },
        )
    });
    assert_eq!(env.datasource("From C++").sha256, sha);
    assert_eq!(
        env.datasource("From C++ slow").sha256,
        sha,
        "published after the cancelled attempt"
    );
    if with_rows {
        let stored = common::hyper::stored(&env, "Arrow from C++");
        let report = common::hyper::check("check-table", &stored, &arrow);
        assert_eq!(report["rows"], 3000, "{report}");
        assert_eq!(report["mismatches"], serde_json::json!([]), "{report}");
    }
}

#[cfg(target_os = "linux")]
#[test]
fn library_is_linked_nodelete() {
    // Hosts unload plugins; -z nodelete keeps the code mapped after dlclose, so thread-locals
    // left registered never point into unmapped memory. This checks the flag, not a dlclose.
    let out = Command::new("readelf")
        .arg("-d")
        .arg(lib_dir().join("libtableau_publisher.so"))
        .output()
        .expect("readelf (binutils) is installed");
    let dynamic = String::from_utf8_lossy(&out.stdout);
    assert!(
        dynamic.contains("NODELETE"),
        "linked without -z nodelete:\n{dynamic}"
    );
}
