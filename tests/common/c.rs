//! Compiling the C hosts in `tests/c/` against the committed header and this test run's cdylib.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `target/<profile>/deps/`, where `cargo test` builds the cdylib next to the test binary (the
/// copy in `target/<profile>/` is refreshed only by `cargo build`, so it may be stale).
pub fn lib_dir() -> PathBuf {
    std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Compiles `tests/c/<source>` with `cc -std=c11 -O1 -Wall -Wextra -Werror` and `flags`, linked
/// to the library; returns the program's path.
pub fn compile(source: &str, flags: &[&str]) -> PathBuf {
    let root = env!("CARGO_MANIFEST_DIR");
    let stem = Path::new(source).file_stem().unwrap().to_string_lossy();
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{stem}-{}", std::process::id()));
    let lib = lib_dir();
    let status = Command::new("cc")
        .args(["-std=c11", "-O1", "-Wall", "-Wextra", "-Werror"])
        .args(flags)
        .arg(format!("-I{root}/include"))
        .arg(format!("{root}/tests/c/{source}"))
        .arg(format!("-L{}", lib.display()))
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-ltableau_publisher")
        .arg("-o")
        .arg(&out)
        .status()
        .expect("cc runs");
    assert!(status.success(), "cc failed to compile tests/c/{source}");
    out
}

/// A command for a compiled host that loads this test run's library (cargo puts
/// `target/<profile>`, maybe holding a stale copy, on LD_LIBRARY_PATH).
pub fn command(program: &Path) -> Command {
    let mut c = Command::new(program);
    c.env("LD_LIBRARY_PATH", lib_dir());
    c
}
