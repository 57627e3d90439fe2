//! Benchmark helper for the plugin's own path: feeds SRC through `tp_feed_chunk` in 1 MiB
//! chunks (as a host streams an extract while its upstream job runs), waits WAIT seconds (the
//! rest of the job), then times `tp_finalize_and_publish` alone: what the user waits for once
//! the upstream job is done. Prints `FEED_SECONDS FINALIZE_SECONDS` and the result JSON.
//! Used by `bench/run.py`.
//!
//! Usage: finalize CONFIG.json SRC WAIT

use std::ffi::{CStr, CString};
use std::io::Read;
use std::time::{Duration, Instant};

use tableau_publisher::ffi::{
    tp_feed_chunk, tp_finalize_and_publish, tp_free, tp_init, tp_last_error, tp_publisher,
    tp_result_json, tp_status,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, config, src, wait] = &args[..] else {
        eprintln!("usage: finalize CONFIG.json SRC WAIT");
        std::process::exit(2);
    };
    let config = std::fs::read_to_string(config).expect("CONFIG.json is readable");
    let wait: f64 = wait.parse().expect("WAIT is a number of seconds");
    let config = CString::new(config).expect("CONFIG.json has no NUL byte");
    let mut p: *mut tp_publisher = std::ptr::null_mut();
    // SAFETY: valid C string and out pointer.
    let rc = unsafe { tp_init(config.as_ptr(), &mut p) };
    if rc != tp_status::TP_OK {
        // SAFETY: NULL asks for this thread's tp_init failure; a valid C string.
        let why = unsafe { CStr::from_ptr(tp_last_error(std::ptr::null())) };
        eprintln!("tp_init failed: {}", why.to_string_lossy());
        std::process::exit(1);
    }
    let mut file = std::fs::File::open(src).expect("SRC is readable");
    let mut buf = vec![0u8; 1024 * 1024];
    let started = Instant::now();
    loop {
        let n = file.read(&mut buf).expect("read SRC");
        if n == 0 {
            break;
        }
        // SAFETY: live handle, `n` readable bytes.
        assert_eq!(
            unsafe { tp_feed_chunk(p, buf.as_ptr(), n) },
            tp_status::TP_OK
        );
    }
    let fed = started.elapsed();
    // Write the spool back to disk now, as hours of feeding would have, so that the timed call
    // does not share the CPU with the writeback of a spool filled in a second.
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    std::thread::sleep(Duration::from_secs_f64(wait));
    let started = Instant::now();
    // SAFETY: live handle.
    let rc = unsafe { tp_finalize_and_publish(p) };
    let finalized = started.elapsed();
    let code = if rc == tp_status::TP_OK {
        // SAFETY: live handle; the string lives until the next call on it.
        let json = unsafe { CStr::from_ptr(tp_result_json(p)) };
        println!("{:.6} {:.6}", fed.as_secs_f64(), finalized.as_secs_f64());
        println!("{}", json.to_string_lossy());
        0
    } else {
        // SAFETY: live handle; a valid C string.
        let why = unsafe { CStr::from_ptr(tp_last_error(p)) };
        eprintln!("publish failed: {}", why.to_string_lossy());
        1
    };
    // SAFETY: the handle from tp_init.
    unsafe { tp_free(p) };
    std::process::exit(code);
}
