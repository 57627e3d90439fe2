//! The committed header is exactly what cbindgen generates, exports only tp_/TP_ names, and
//! its version macro matches the library.

use std::ffi::CStr;

const GENERATED: &str = include_str!(concat!(env!("OUT_DIR"), "/tableau_publisher.h"));

#[test]
fn committed_header_matches_cbindgen() {
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/include/tableau_publisher.h"
    ))
    .expect("include/tableau_publisher.h exists");
    assert!(
        committed == GENERATED,
        "include/tableau_publisher.h is out of date with src/ffi; run `TP_REGENERATE_HEADER=1 cargo build` and commit it"
    );
}

#[test]
fn header_exports_only_tp_names() {
    for line in GENERATED.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("#define ") {
            let name = rest.split_whitespace().next().unwrap();
            assert!(
                name.starts_with("TP_") || name == "TABLEAU_PUBLISHER_H",
                "macro {name}"
            );
        }
        if line.ends_with(");") && line.contains('(') && !line.starts_with("//") {
            let before = line.split('(').next().unwrap();
            let name = before.rsplit([' ', '*']).next().unwrap();
            assert!(name.starts_with("tp_"), "function {name}");
        }
        if let Some(rest) = line.strip_prefix("typedef ") {
            let words: Vec<&str> = rest.split_whitespace().collect();
            let name = if words.last() == Some(&"{") {
                words[1]
            } else {
                words.last().unwrap().trim_end_matches(';')
            };
            assert!(name.starts_with("tp_"), "type {name}");
        }
        if let Some(rest) = line
            .strip_prefix("} ")
            .filter(|r| !r.trim_start().starts_with("//"))
        {
            let name = rest.trim_end_matches(';');
            assert!(name.starts_with("tp_"), "type {name}");
        }
        if line.ends_with(',') && !line.starts_with("//") {
            assert!(line.starts_with("TP_"), "enum value {line}");
        }
    }
    for required in [
        "tp_init",
        "tp_feed_chunk",
        "tp_finalize_and_publish",
        "tp_last_error",
        "tp_result_json",
        "tp_free",
        "tp_version",
    ] {
        assert!(
            GENERATED.contains(&format!("{required}(")),
            "{required} missing from the header"
        );
    }
}

#[test]
fn versions_agree() {
    let abi_macro: u32 = GENERATED
        .lines()
        .find_map(|l| l.strip_prefix("#define TP_ABI_VERSION "))
        .expect("TP_ABI_VERSION macro")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(abi_macro, tableau_publisher::ffi::tp_abi_version());
    let v = unsafe { CStr::from_ptr(tableau_publisher::ffi::tp_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn status_numbers_are_fixed() {
    use tableau_publisher::ffi::tp_status::*;
    let expected = [
        (TP_OK, 0, "TP_OK = 0"),
        (TP_ERR_INVALID_ARGUMENT, 1, "TP_ERR_INVALID_ARGUMENT = 1"),
        (TP_ERR_CONFIG, 2, "TP_ERR_CONFIG = 2"),
        (TP_ERR_STATE, 3, "TP_ERR_STATE = 3"),
        (TP_ERR_IO, 4, "TP_ERR_IO = 4"),
        (TP_ERR_AUTH, 5, "TP_ERR_AUTH = 5"),
        (TP_ERR_PERMISSION, 6, "TP_ERR_PERMISSION = 6"),
        (TP_ERR_NOT_FOUND, 7, "TP_ERR_NOT_FOUND = 7"),
        (TP_ERR_CONFLICT, 8, "TP_ERR_CONFLICT = 8"),
        (TP_ERR_RATE_LIMITED, 9, "TP_ERR_RATE_LIMITED = 9"),
        (TP_ERR_SERVER, 10, "TP_ERR_SERVER = 10"),
        (TP_ERR_NETWORK, 11, "TP_ERR_NETWORK = 11"),
        (TP_ERR_TIMEOUT, 12, "TP_ERR_TIMEOUT = 12"),
        (TP_ERR_CANCELLED, 13, "TP_ERR_CANCELLED = 13"),
        (TP_ERR_INTERNAL, 14, "TP_ERR_INTERNAL = 14"),
    ];
    for (status, n, text) in expected {
        assert_eq!(status as i32, n);
        assert!(GENERATED.contains(text), "header lacks {text}");
        let s = unsafe { CStr::from_ptr(tableau_publisher::ffi::tp_status_str(n)) };
        assert!(!s.to_bytes().is_empty() && s.to_bytes() != b"unknown status");
    }
}
