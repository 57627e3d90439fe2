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

/// Every name the header declares: macros, types, enum values, functions.
fn declared_names() -> Vec<(&'static str, String)> {
    let mut names = Vec::new();
    let mut in_enum = false;
    for line in GENERATED.lines().map(str::trim) {
        if line.is_empty()
            || line.starts_with("//")
            || line.starts_with("/*")
            || line.starts_with('*')
        {
            continue;
        }
        if let Some(rest) = line.strip_prefix("#define ") {
            names.push(("macro", rest.split_whitespace().next().unwrap().to_owned()));
        } else if line.starts_with('#') {
            continue;
        } else if let Some(rest) = line.strip_prefix("typedef ") {
            let words: Vec<&str> = rest.split_whitespace().collect();
            if let Some(pointer) = rest.split("(*").nth(1) {
                names.push((
                    "function pointer type",
                    pointer.split(')').next().unwrap().to_owned(),
                ));
            } else if words.last() == Some(&"{") {
                names.push(("type", words[1].to_owned()));
                in_enum = words[0] == "enum";
            } else {
                names.push((
                    "type",
                    words.last().unwrap().trim_end_matches(';').to_owned(),
                ));
            }
        } else if let Some(rest) = line.strip_prefix('}') {
            let name = rest.trim().trim_end_matches(';');
            if !name.is_empty() && !name.starts_with("//") {
                names.push(("type", name.to_owned()));
            }
            in_enum = false;
        } else if in_enum {
            names.push((
                "enum value",
                line.split([' ', ',']).next().unwrap().to_owned(),
            ));
        } else if let Some(open) = line.find('(') {
            if !line.starts_with("extern") {
                let name = line[..open].rsplit([' ', '*']).next().unwrap();
                names.push(("function", name.to_owned()));
            }
        }
    }
    names
}

#[test]
fn header_exports_only_tp_names() {
    let names = declared_names();
    for (kind, name) in &names {
        let ok =
            name.starts_with("tp_") || name.starts_with("TP_") || name == "TABLEAU_PUBLISHER_H";
        assert!(ok, "{kind} {name} does not start with tp_/TP_");
    }
    for required in [
        "tp_init",
        "tp_feed_chunk",
        "tp_feed_file",
        "tp_finalize_and_publish",
        "tp_last_error",
        "tp_result_json",
        "tp_free",
        "tp_version",
        "tp_set_progress_callback",
        "tp_set_log_callback",
        "tp_cancel",
        "tp_preflight",
    ] {
        assert!(
            names.iter().any(|(k, n)| *k == "function" && n == required),
            "{required} missing from the header"
        );
    }
    assert!(names
        .iter()
        .any(|(k, n)| *k == "enum value" && n == "TP_ERR_INTERNAL"));
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

/// `(NAME, number)` of every `TP_<prefix>…` enum value in the header.
fn header_values(prefixes: &[&str]) -> Vec<(String, i64)> {
    GENERATED
        .lines()
        .filter_map(|l| {
            let (name, n) = l.trim().trim_end_matches(',').split_once(" = ")?;
            if !prefixes.iter().any(|p| name.starts_with(p)) {
                return None;
            }
            Some((name.to_owned(), n.parse().ok()?))
        })
        .collect()
}

/// `NOT_FOUND` → `NotFound`.
fn camel(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| w[..1].to_owned() + &w[1..].to_ascii_lowercase())
        .collect()
}

/// `Name = number` members of a C# enum in a source file.
fn csharp_enum(source: &str, enum_name: &str) -> Vec<(String, i64)> {
    let body = source
        .split(&format!("public enum {enum_name}"))
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .unwrap_or_else(|| panic!("no enum {enum_name}"));
    body.lines()
        .filter_map(|l| {
            let (name, n) = l.trim().trim_end_matches(',').split_once(" = ")?;
            Some((name.to_owned(), n.parse().ok()?))
        })
        .collect()
}

#[test]
fn bindings_use_the_headers_numbers() {
    let statuses = header_values(&["TP_OK", "TP_ERR_"]);
    let phases = header_values(&["TP_PHASE_"]);
    let levels = header_values(&["TP_LOG_"]);
    assert_eq!(statuses.len(), 15);
    assert_eq!(phases.len(), 8);
    assert_eq!(levels.len(), 3);

    let cs = include_str!("../bindings/csharp/TableauPublisher.cs");
    let want: Vec<(String, i64)> = statuses
        .iter()
        .map(|(name, n)| {
            let short = name.strip_prefix("TP_ERR_").unwrap_or("OK");
            (camel(short), *n)
        })
        .collect();
    assert_eq!(csharp_enum(cs, "Status"), want, "C# Status");
    let want: Vec<(String, i64)> = phases
        .iter()
        .map(|(name, n)| (camel(&name["TP_PHASE_".len()..]), *n))
        .collect();
    assert_eq!(csharp_enum(cs, "Phase"), want, "C# Phase");
    let want: Vec<(String, i64)> = levels
        .iter()
        .map(|(name, n)| (camel(&name["TP_LOG_".len()..]), *n))
        .collect();
    assert_eq!(csharp_enum(cs, "LogLevel"), want, "C# LogLevel");
    assert!(
        cs.contains(&format!(
            "RequiredAbiVersion = {}",
            tableau_publisher::ffi::TP_ABI_VERSION
        )),
        "C# ABI version"
    );

    let py = include_str!("../bindings/python/tableau_publisher.py");
    let listed: String = statuses
        .iter()
        .map(|(name, _)| format!("\"{name}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let py_list: String = py
        .split("STATUS_NAMES = [")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .expect("STATUS_NAMES")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(
        py_list.trim_end_matches(','),
        listed,
        "Python STATUS_NAMES in number order"
    );
    for (name, n) in &phases {
        let entry = format!(
            "{n}: \"{}\"",
            name["TP_PHASE_".len()..].to_ascii_lowercase()
        );
        assert!(py.contains(&entry), "Python PHASES lacks {entry}");
    }
    for (name, n) in &levels {
        let entry = format!("{n}: \"{}\"", name["TP_LOG_".len()..].to_ascii_lowercase());
        assert!(py.contains(&entry), "Python LOG_LEVELS lacks {entry}");
    }
    assert!(
        py.contains(&format!(
            "ABI_VERSION = {}",
            tableau_publisher::ffi::TP_ABI_VERSION
        )),
        "Python ABI version"
    );
}
