//! Generates the C header with cbindgen.
//!
//! The header is always written to `OUT_DIR`; the committed copy in `include/` is rewritten only
//! when `TP_REGENERATE_HEADER=1` is set, and a test fails when the two differ.

use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=TP_REGENERATE_HEADER");

    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable and valid");
    let generated = out_dir.join("tableau_publisher.h");
    // Only the C boundary is read, so only its items can reach the header: an allow-list by
    // construction (a test checks every name in it starts with tp_/TP_).
    let mut builder = cbindgen::Builder::new().with_config(config);
    let mut sources: Vec<PathBuf> = std::fs::read_dir(crate_dir.join("src/ffi"))
        .expect("src/ffi is readable")
        .map(|e| e.expect("src/ffi entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    sources.sort(); // a stable order, so the header does not change with the directory's
    sources.sort_by_key(|p| !p.ends_with("mod.rs")); // the exports first, as before
    for source in sources {
        builder = builder.with_src(source);
    }
    match builder.generate() {
        Ok(bindings) => {
            bindings.write_to_file(&generated);
            if std::env::var_os("TP_REGENERATE_HEADER").is_some_and(|v| v == "1") {
                bindings.write_to_file(crate_dir.join("include/tableau_publisher.h"));
            }
        }
        // A syntax error in src/ is reported by rustc with better context; keep going so it is.
        Err(e) => println!("cargo:warning=cbindgen could not generate the header: {e}"),
    }

    // Plugins are often dlclose()d by their hosts; thread-locals left registered by the Rust
    // runtime would then point into unmapped code. Keep the library mapped (like zenoh-c, rustls-ffi).
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if matches!(
        target_os.as_str(),
        "linux" | "android" | "freebsd" | "netbsd" | "openbsd"
    ) {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    }
}
