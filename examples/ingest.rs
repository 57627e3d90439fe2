//! Ingest benchmark helper: reads SRC in CHUNK-byte pieces and hands each to `tp_feed_chunk`,
//! the way a host streams an extract, then prints the seconds spent in the feed calls.
//! The spool goes to DIR. Used by `bench/run.py` next to `dd` with the same block size.
//!
//! Usage: ingest SRC DIR CHUNK

use std::ffi::CString;
use std::io::Read;
use std::time::{Duration, Instant};

use tableau_publisher::ffi::{tp_feed_chunk, tp_free, tp_init, tp_publisher, tp_status};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, src, dir, chunk] = &args[..] else {
        eprintln!("usage: ingest SRC DIR CHUNK");
        std::process::exit(2);
    };
    let chunk: usize = chunk.parse().expect("CHUNK is a number of bytes");
    let config = serde_json::json!({
        "server_url": "http://127.0.0.1:9",
        "site": "",
        "auth": {"method": "pat", "token_name": "bench", "token_secret": "unused"},
        "project": "default",
        "datasource_name": "bench",
        "mode": "overwrite",
        "spool_dir": dir,
    })
    .to_string();
    let config = CString::new(config).unwrap();
    let mut p: *mut tp_publisher = std::ptr::null_mut();
    // SAFETY: valid C string and out pointer.
    assert_eq!(
        unsafe { tp_init(config.as_ptr(), &mut p) },
        tp_status::TP_OK
    );
    let mut file = std::fs::File::open(src).expect("SRC is readable");
    let mut buf = vec![0u8; chunk];
    let mut in_feed = Duration::ZERO;
    let started = Instant::now();
    loop {
        let n = file.read(&mut buf).expect("read SRC");
        if n == 0 {
            break;
        }
        let t = Instant::now();
        // SAFETY: live handle, `n` readable bytes.
        let rc = unsafe { tp_feed_chunk(p, buf.as_ptr(), n) };
        in_feed += t.elapsed();
        assert_eq!(rc, tp_status::TP_OK);
    }
    let total = started.elapsed();
    // SAFETY: the handle from tp_init; frees the spool too.
    unsafe { tp_free(p) };
    println!("{:.6} {:.6}", total.as_secs_f64(), in_feed.as_secs_f64());
}
