//! The fuzz targets on the stable toolchain, bounded by count: every target replays its whole
//! seed corpus (`fuzz/corpus/<target>/`), a few hostile inputs built here (200,000-deep nesting,
//! a billion laughs, an answer over the size limit, ...), and a fixed number of mutations of
//! the seeds from a seeded PRNG, so a failure reproduces exactly. The same functions run under
//! libFuzzer with `cargo +nightly fuzz run <target>` (see `fuzz/`). A failing input is written
//! to `target/fuzz-smoke-failures/` so it can be replayed there and added to the corpus.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use tableau_publisher::fuzzing::{self, MAX_ANSWER_BYTES};

/// Generated inputs per target.
const MUTATIONS: usize = 3000;

type Target = fn(&[u8]);

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut seeds: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    seeds.sort();
    assert!(
        seeds.len() >= 4,
        "{}: a corpus of {} seeds is too small",
        dir.display(),
        seeds.len()
    );
    seeds
}

/// Runs one input; on a panic, saves the input and fails naming it.
fn run(target_name: &str, f: Target, input: &[u8], what: &str) {
    if catch_unwind(AssertUnwindSafe(|| f(input))).is_ok() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-smoke-failures");
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join(format!("{target_name}-{:016x}", fnv(input)));
    let _ = std::fs::write(&file, input);
    panic!(
        "{target_name}: {what} failed; the input ({} bytes) is in {}",
        input.len(),
        file.display()
    );
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Fragments the mutator inserts: XML, DTD, JSON and multipart syntax.
const DICTIONARY: &[&str] = &[
    "<",
    ">",
    "/>",
    "</",
    "<a>",
    "</a>",
    "<a/>",
    "=\"",
    "\"",
    "'",
    "&",
    ";",
    "&amp;",
    "&lt;",
    "&#",
    "&#x",
    "&#0;",
    "&#x110000;",
    "&#xD800;",
    "&e;",
    "<!DOCTYPE",
    "<!DOCTYPE r [<!ENTITY e \"&e;&e;\">]>",
    "<!ENTITY",
    "<![CDATA[",
    "]]>",
    "<!--",
    "-->",
    "<?xml version=\"1.0\"?>",
    "<?",
    "?>",
    "xmlns=\"http://tableau.com/api\"",
    "xmlns:t=\"u\"",
    "t:",
    ":",
    " id=\"\"",
    " id=\"x\"",
    " name=\" \"",
    " token=\"t\"",
    " progress=\"101\"",
    " completedAt=\"\"",
    " uploadSessionId=\"1:2\"",
    "<error code=\"401002\">",
    "<summary>",
    "<detail>",
    "<notes>",
    "<job id=\"j\">",
    "<datasource id=\"d\" name=\"n\">",
    "<project id=\"p\" name=\"n\" parentProjectId=\" \"/>",
    "<credentials token=\"t\"><site id=\"s\"/>",
    "<serverInfo><restApiVersion>",
    "<html>",
    "\u{feff}",
    "\u{0}",
    "\u{ffff}",
    "\r\n",
    "\r\n\r\n",
    "--",
    "--tp-0123456789abcdef",
    "--tp-0123456789abcdef--",
    "Content-Disposition: form-data; name=\"tableau_file\"",
    "Content-Disposition: form-data; name=\"request_payload\"",
    "Content-Disposition: form-data; name=\"tableau_datasource\"; filename=\"x.hyper\"",
    "Content-Type: ",
    "{",
    "}",
    "[",
    "]",
    "null",
    "true",
    "1e999",
    "-0",
    "18446744073709551616",
    "\"\\ud800\"",
    "\"error\":",
    "\"_env\"",
    "\"server_url\":\"http://[::1]:1/\"",
    "\"server_url\":\"https://u:p@h\"",
    "\"project\":[]",
    "\"project\":\"/\"",
    "\"auth\":{}",
    "\"method\":\"connected_app\"",
    "\"chunk_size_bytes\":65536",
    "\"proxy\":{\"url\":\"http://p:1\"}",
];

/// Values the config mutator puts into keys.
fn json_value(rng: &mut fastrand::Rng, depth: u32) -> serde_json::Value {
    use serde_json::Value;
    match rng.u8(..10) {
        0 => Value::Null,
        1 => Value::Bool(rng.bool()),
        2 => Value::from(rng.u64(..)),
        3 => Value::from(rng.i64(..)),
        4 => Value::from(rng.f64() * 1e300),
        5 => Value::from([0u64, 1, 65535, 65536, 67_108_864, 67_108_865][rng.usize(..6)]),
        6 if depth < 3 => Value::Array(
            (0..rng.usize(..3))
                .map(|_| json_value(rng, depth + 1))
                .collect(),
        ),
        7 if depth < 3 => {
            let mut m = serde_json::Map::new();
            for _ in 0..rng.usize(..3) {
                m.insert(pick_key(rng).to_owned(), json_value(rng, depth + 1));
            }
            Value::Object(m)
        }
        _ => Value::String(
            [
                "",
                " ",
                "https://tableau.example.com",
                "http://localhost/",
                "ftp://x",
                "https://x/?q",
                "a/b",
                "/",
                "3.21",
                "3.",
                "auto",
                "hyper",
                "append",
                "pat",
                "password",
                "connected_app",
                "TP_SECRET",
                "s3cretvalue1234567",
                "\u{0}",
                "é/ü",
            ][rng.usize(..20)]
            .to_owned(),
        ),
    }
}

fn pick_key(rng: &mut fastrand::Rng) -> &'static str {
    const KEYS: &[&str] = &[
        "server_url",
        "site",
        "auth",
        "method",
        "token_name",
        "token_secret",
        "token_secret_env",
        "username",
        "password",
        "password_env",
        "client_id",
        "secret_id",
        "secret_value",
        "secret_value_env",
        "scopes",
        "project",
        "project_id",
        "datasource_name",
        "mode",
        "file_type",
        "description",
        "api_version",
        "chunk_size_bytes",
        "as_job",
        "request_timeout_secs",
        "job_timeout_secs",
        "single_request_max_bytes",
        "session_max_age_secs",
        "allow_insecure_http",
        "retry",
        "max_attempts",
        "proxy",
        "url",
        "unknown",
    ];
    KEYS[rng.usize(..KEYS.len())]
}

/// A structure-aware mutation of a JSON config: set, remove or nest keys.
fn mutate_json(rng: &mut fastrand::Rng, seed: &[u8]) -> Option<Vec<u8>> {
    let mut v: serde_json::Value = serde_json::from_slice(seed).ok()?;
    let obj = v.as_object_mut()?;
    for _ in 0..rng.usize(1..4) {
        match rng.u8(..4) {
            0 => {
                let k = pick_key(rng);
                obj.remove(k);
            }
            1 => {
                if let Some(serde_json::Value::Object(auth)) = obj.get_mut("auth") {
                    let k = pick_key(rng);
                    let val = json_value(rng, 1);
                    auth.insert(k.to_owned(), val);
                }
            }
            _ => {
                let k = pick_key(rng);
                let val = json_value(rng, 0);
                obj.insert(k.to_owned(), val);
            }
        }
    }
    serde_json::to_vec(&v).ok()
}

/// One byte-level mutation.
fn mutate_once(rng: &mut fastrand::Rng, data: &mut Vec<u8>, seeds: &[(PathBuf, Vec<u8>)]) {
    let len = data.len();
    match rng.u8(..9) {
        // Bit flips.
        0 if len > 0 => {
            for _ in 0..rng.usize(1..8) {
                let i = rng.usize(..len);
                data[i] ^= 1 << rng.u8(..8);
            }
        }
        // An interesting byte.
        1 if len > 0 => {
            let i = rng.usize(..len);
            const BYTES: &[u8] = b"<>/&;\"'=:-\r\n\0\xff\x80[]{}";
            data[i] = BYTES[rng.usize(..BYTES.len())];
        }
        // Truncation.
        2 if len > 0 => data.truncate(rng.usize(..len)),
        // A splice with another seed.
        3 => {
            let other = &seeds[rng.usize(..seeds.len())].1;
            let cut = rng.usize(..=len);
            let from = rng.usize(..=other.len());
            data.truncate(cut);
            data.extend_from_slice(&other[from..]);
        }
        // A slice repeated (repeated or nested fragments).
        4 if len > 0 => {
            let start = rng.usize(..len);
            let end = (start + rng.usize(1..64)).min(len);
            let piece = data[start..end].to_vec();
            let times = [2, 10, 65, 1000][rng.usize(..4)];
            let tail = data.split_off(end);
            for _ in 0..times {
                data.extend_from_slice(&piece);
            }
            data.extend_from_slice(&tail);
        }
        // Wrapped in nesting around the limit, or far beyond it.
        5 => {
            let depth = [2, 62, 63, 64, 65, 3000][rng.usize(..6)];
            let mut out = b"<n>".repeat(depth);
            out.append(data);
            out.extend_from_slice(&b"</n>".repeat(depth));
            *data = out;
        }
        // A huge attribute value or text.
        6 => {
            let size = [1000, 70_000, 600_000][rng.usize(..3)];
            let at = rng.usize(..=len);
            let mut ins = b" huge=\"".to_vec();
            ins.resize(ins.len() + size, b"x&;<"[rng.usize(..4)]);
            ins.push(b'"');
            data.splice(at..at, ins);
        }
        // Erase a range.
        7 if len > 0 => {
            let start = rng.usize(..len);
            let end = (start + rng.usize(1..32)).min(len);
            data.drain(start..end);
        }
        // A dictionary fragment.
        _ => {
            let at = rng.usize(..=len);
            let frag = DICTIONARY[rng.usize(..DICTIONARY.len())].as_bytes();
            data.splice(at..at, frag.iter().copied());
        }
    }
}

/// Inputs no mutation is likely to reach, for every target.
fn hostile() -> Vec<(&'static str, Vec<u8>)> {
    let laughs = {
        let mut s = String::from("<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY l0 \"lol\">");
        for i in 1..10 {
            s.push_str(&format!(
                "<!ENTITY l{i} \"{}\">",
                format!("&l{};", i - 1).repeat(10)
            ));
        }
        s.push_str(
            "]><tsResponse><error code=\"&l9;\"><summary>&l9;</summary></error></tsResponse>",
        );
        s.into_bytes()
    };
    // Both under MAX_ANSWER_BYTES, so the parser, not the size check, has to refuse them.
    let attrs: String = (0..300_000).map(|i| format!(" a{i:x}=\"\"")).collect();
    let ns: String = (0..250_000).map(|i| format!(" xmlns:{i:x}=\"\"")).collect();
    assert!(attrs.len() < MAX_ANSWER_BYTES && ns.len() < MAX_ANSWER_BYTES);
    vec![
        ("empty", Vec::new()),
        ("200,000-deep nesting", {
            let mut v = b"<a>".repeat(200_000);
            v.extend_from_slice(&b"</a>".repeat(200_000));
            v
        }),
        ("200,000 unclosed", b"<job id=\"j\">".repeat(200_000)),
        ("billion laughs", laughs),
        ("over the size limit", {
            let mut v = b"<tsResponse><error code=\"1\"><summary>".to_vec();
            v.resize(MAX_ANSWER_BYTES + 1, b'x');
            v.extend_from_slice(b"</summary></error></tsResponse>");
            v
        }),
        ("over the size limit, JSON", {
            let mut v = b"{\"error\":{\"code\":\"1\",\"detail\":\"".to_vec();
            v.resize(MAX_ANSWER_BYTES + 1, b'x');
            v.extend_from_slice(b"\"}}");
            v
        }),
        ("300,000 attributes", format!("<r{attrs}/>").into_bytes()),
        (
            "250,000 namespace declarations",
            format!("<r{ns}/>").into_bytes(),
        ),
        ("110,000 elements", {
            let mut v = b"<r>".to_vec();
            v.extend_from_slice(&b"<notes>n</notes>".repeat(110_000));
            v.extend_from_slice(b"</r>");
            v
        }),
        ("deep JSON", {
            let mut v = b"{\"error\":".to_vec();
            v.extend_from_slice(&b"[".repeat(100_000));
            v
        }),
    ]
}

fn smoke(name: &str, f: Target) {
    let started = std::time::Instant::now();
    let seeds = corpus(name);
    for (path, bytes) in &seeds {
        run(name, f, bytes, &format!("seed {}", path.display()));
    }
    for (what, bytes) in hostile() {
        run(name, f, &bytes, what);
    }
    let mut rng = fastrand::Rng::with_seed(fnv(name.as_bytes()));
    for i in 0..MUTATIONS {
        let seed = &seeds[rng.usize(..seeds.len())].1;
        let mut data = match name {
            "config" if rng.bool() => match mutate_json(&mut rng, seed) {
                Some(d) => d,
                None => seed.clone(),
            },
            _ => seed.clone(),
        };
        for _ in 0..rng.usize(1..5) {
            mutate_once(&mut rng, &mut data, &seeds);
        }
        run(name, f, &data, &format!("mutation {i}"));
    }
    eprintln!(
        "{name}: {} seeds, {MUTATIONS} mutations in {:?}",
        seeds.len(),
        started.elapsed()
    );
}

/// The multipart target reads control bytes and a Content-Type line first: mutations of the
/// seeds keep those, the generic hostile inputs get a valid header in front.
fn multipart(data: &[u8]) {
    tableau_emulator::fuzz_multipart(data);
    if !data.starts_with(b"\x01\x00multipart/") {
        let mut framed = b"\x01\x00multipart/mixed; boundary=b\n".to_vec();
        framed.extend_from_slice(data);
        tableau_emulator::fuzz_multipart(&framed);
    }
}

#[test]
fn xml_parse() {
    smoke("xml_parse", fuzzing::xml_parse);
}

#[test]
fn server_info() {
    smoke("server_info", fuzzing::server_info);
}

#[test]
fn credentials() {
    smoke("credentials", fuzzing::credentials);
}

#[test]
fn projects() {
    smoke("projects", fuzzing::projects);
}

#[test]
fn datasources() {
    smoke("datasources", fuzzing::datasources);
}

#[test]
fn file_upload() {
    smoke("file_upload", fuzzing::file_upload);
}

#[test]
fn job() {
    smoke("job", fuzzing::job);
}

#[test]
fn published() {
    smoke("published", fuzzing::published);
}

#[test]
fn parse_error() {
    smoke("parse_error", fuzzing::parse_error);
}

#[test]
fn config() {
    smoke("config", fuzzing::config);
}

#[test]
fn multipart_reader() {
    smoke("multipart", multipart);
}

/// Every fuzz target in `fuzz/fuzz_targets/` is smoke-tested here, and has a corpus.
#[test]
fn every_fuzz_target_is_covered() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut targets: Vec<String> = std::fs::read_dir(root.join("fuzz_targets"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_owned()))
        .collect();
    targets.sort();
    let covered = [
        "config",
        "credentials",
        "datasources",
        "file_upload",
        "job",
        "multipart",
        "parse_error",
        "projects",
        "published",
        "server_info",
        "xml_parse",
    ];
    assert_eq!(targets, covered);
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    for t in covered {
        assert!(
            manifest.contains(&format!("name = \"{t}\"")),
            "{t} has no [[bin]] in fuzz/Cargo.toml"
        );
        assert!(corpus(t).len() >= 4);
    }
}
