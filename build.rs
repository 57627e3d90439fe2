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
    match cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
    {
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
