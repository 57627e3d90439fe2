//! The C ABI: every `#[no_mangle]` export, and nothing but the translation between C and
//! [`Publisher`]. Each body runs inside `boundary::ffi_boundary`.
#![deny(missing_docs)]
#![allow(clippy::missing_safety_doc)]

mod boundary;
mod callbacks;
mod handle;
mod last_error;
mod status;

use std::ffi::{c_char, CStr};
use std::ptr;

use boundary::ffi_boundary;
pub use callbacks::{tp_log_callback, tp_log_level, tp_phase, tp_progress, tp_progress_callback};
pub use handle::tp_publisher;
use handle::{Access, Handle};
use last_error::{init_error, set_init_error, to_cstring};
pub use status::{tp_status, TP_ABI_VERSION};

use crate::error::{Error, ErrorKind};
use crate::publisher::Publisher;

/// Records `e` on the handle. A call made at the wrong time or with a wrong argument is the
/// caller's to fix, so its message starts with the C function's name.
fn fail(p: &mut Handle, function: &str, e: &Error) -> tp_status {
    p.last_error = match e.kind() {
        ErrorKind::State | ErrorKind::InvalidArgument => {
            to_cstring(&format!("{function}: {}", e.message()))
        }
        _ => to_cstring(e.message()),
    };
    e.kind().into()
}

fn null_handle(function: &str) -> tp_status {
    set_init_error(&format!(
        "{function}: the publisher handle is NULL; pass the handle that tp_init wrote"
    ));
    tp_status::TP_ERR_INVALID_ARGUMENT
}

/// The body of every export that takes a handle: the panic boundary, the NULL check, the
/// refusal of a handle another call is using, and the last error cleared before `body` runs.
///
/// # Safety
/// `p` is NULL or a live handle.
unsafe fn with_handle(
    p: *mut tp_publisher,
    function: &str,
    body: impl FnOnce(&mut Handle) -> tp_status,
) -> tp_status {
    ffi_boundary!(panicked(p, function), {
        // SAFETY: NULL or a live handle per the caller's contract.
        match unsafe { tp_publisher::access(p) } {
            Access::Null => null_handle(function),
            Access::Busy => tp_status::TP_ERR_STATE,
            Access::Poisoned(mut h) => {
                h.last_error = to_cstring(&format!("{function}: {POISONED}"));
                tp_status::TP_ERR_INTERNAL
            }
            Access::Held(mut h) => {
                h.last_error = Default::default();
                body(&mut h)
            }
        }
    })
}

/// `TP_OK`, or the error's status with its message recorded on the handle.
fn report<T>(h: &mut Handle, function: &str, result: crate::error::Result<T>) -> tp_status {
    match result {
        Ok(_) => tp_status::TP_OK,
        Err(e) => fail(h, function, &e),
    }
}

fn invalid(h: &mut Handle, message: &str) -> tp_status {
    h.last_error = to_cstring(message);
    tp_status::TP_ERR_INVALID_ARGUMENT
}

/// What every call on a handle whose earlier call panicked is told.
const POISONED: &str = "an earlier call on this handle failed inside the library (a bug in tableau-publisher), so the handle may be inconsistent and is no longer used; free it with tp_free and create a new one (any data fed is still in spool_dir)";

fn panicked(p: *mut tp_publisher, function: &str) -> tp_status {
    let msg = format!(
        "{function}: internal error (a bug in tableau-publisher); any data fed is still in spool_dir"
    );
    // SAFETY: same pointer the caller gave us; the panic happened inside our own code and the
    // call's hold on the handle was released while unwinding.
    match unsafe { tp_publisher::access(p) } {
        Access::Held(mut h) | Access::Poisoned(mut h) => h.last_error = to_cstring(&msg),
        Access::Null | Access::Busy => set_init_error(&msg),
    }
    tp_status::TP_ERR_INTERNAL
}

/// Parses and validates the JSON configuration `config_json` (UTF-8, NUL-terminated) and, on
/// success, writes a new handle to `*out`. No network, no threads, no files are created.
/// On failure `*out` is left unchanged and `tp_last_error(NULL)` describes the problem.
/// The caller keeps ownership of `config_json` and must release the handle with `tp_free`.
#[no_mangle]
pub unsafe extern "C" fn tp_init(
    config_json: *const c_char,
    out: *mut *mut tp_publisher,
) -> tp_status {
    ffi_boundary!(
        {
            set_init_error("tp_init: internal error (a bug in tableau-publisher)");
            tp_status::TP_ERR_INTERNAL
        },
        {
            if config_json.is_null() || out.is_null() {
                set_init_error("tp_init: config_json and out must not be NULL");
                return tp_status::TP_ERR_INVALID_ARGUMENT;
            }
            // SAFETY: non-NULL and NUL-terminated per the contract.
            let json = match unsafe { CStr::from_ptr(config_json) }.to_str() {
                Ok(s) => s,
                Err(_) => {
                    set_init_error("tp_init: config_json is not valid UTF-8");
                    return tp_status::TP_ERR_INVALID_ARGUMENT;
                }
            };
            match Publisher::new(json) {
                Ok(publisher) => {
                    set_init_error("");
                    // SAFETY: `out` is non-NULL and writable per the contract.
                    unsafe { *out = Box::into_raw(tp_publisher::new(publisher)) };
                    tp_status::TP_OK
                }
                Err(e) => {
                    set_init_error(e.message());
                    e.kind().into()
                }
            }
        }
    )
}

/// Appends `len` bytes at `data` to the handle's spool on disk; memory use stays bounded
/// whatever the total. `(NULL, 0)` is an empty chunk; `(NULL, len > 0)` is
/// `TP_ERR_INVALID_ARGUMENT`. The bytes are copied; the caller keeps ownership of `data`.
/// A background thread of the handle computes their SHA-256 from the spool as it grows, so
/// the final upload need not. After `tp_finalize_and_publish` has been called, returns
/// `TP_ERR_STATE`.
#[no_mangle]
pub unsafe extern "C" fn tp_feed_chunk(
    p: *mut tp_publisher,
    data: *const u8,
    len: usize,
) -> tp_status {
    // SAFETY: the export's contract is with_handle's.
    unsafe {
        with_handle(p, "tp_feed_chunk", |h| {
            let bytes: &[u8] = if len == 0 {
                &[]
            } else if data.is_null() {
                return invalid(h, "tp_feed_chunk: data is NULL but len is not 0");
            } else {
                // SAFETY: non-NULL, `len` readable bytes per the contract.
                std::slice::from_raw_parts(data, len)
            };
            let result = h.inner.feed(bytes);
            report(h, "tp_feed_chunk", result)
        })
    }
}

/// Uses the existing file at `path` (UTF-8, NUL-terminated) as the whole input, published in
/// place without a copy: for hosts that already wrote the extract to disk. Only on a handle that
/// has not been fed yet; afterwards `tp_feed_chunk` gives `TP_ERR_STATE`. Only its first bytes
/// are read here; a background thread of the handle computes its SHA-256 from this call on,
/// in parallel with the upload. It must not change until the publish ends, and is never
/// modified or deleted, whatever the outcome. The caller keeps ownership of `path`.
#[no_mangle]
pub unsafe extern "C" fn tp_feed_file(p: *mut tp_publisher, path: *const c_char) -> tp_status {
    // SAFETY: the export's contract is with_handle's.
    unsafe {
        with_handle(p, "tp_feed_file", |h| {
            if path.is_null() {
                return invalid(h, "tp_feed_file: path is NULL");
            }
            // SAFETY: non-NULL and NUL-terminated per the contract.
            let Ok(path) = CStr::from_ptr(path).to_str() else {
                return invalid(h, "tp_feed_file: path is not valid UTF-8");
            };
            let result = h.inner.feed_file(std::path::Path::new(path));
            report(h, "tp_feed_file", result)
        })
    }
}

/// Sets the progress callback of handle `p` (see `tp_progress_callback`), or clears it when
/// `callback` is NULL. `userdata` is passed back unchanged and must stay valid while the
/// callback is set. Can be called at any time between other calls on the handle (not from
/// inside a callback).
#[no_mangle]
pub unsafe extern "C" fn tp_set_progress_callback(
    p: *mut tp_publisher,
    callback: tp_progress_callback,
    userdata: *mut std::ffi::c_void,
) -> tp_status {
    // SAFETY: the export's contract is with_handle's.
    unsafe {
        with_handle(p, "tp_set_progress_callback", |h| {
            h.inner
                .set_progress(callback.map(|cb| callbacks::adapt(cb, userdata)));
            tp_status::TP_OK
        })
    }
}

/// Sets the log callback of handle `p` (see `tp_log_callback`), or clears it when `callback`
/// is NULL. `userdata` is passed back unchanged and must stay valid while the callback is set.
/// While set, `tp_finalize_and_publish` and `tp_preflight` tell it, on their thread, what a
/// user should see: each re-authentication and why, each retry and wait with its reason and
/// delay (HTTP 429 and the wait Tableau asked for, 5xx and gateway errors, connection resets,
/// timeouts), upload restarts, waiting for a turn at a shared session, the sign-in and the
/// publish (`TP_LOG_INFO`), and on failure the message `tp_last_error` will give
/// (`TP_LOG_ERROR`), with the kept spool and the `tabpub resume` command. Never a secret. Can
/// be called at any time between other calls on the handle (not from inside a callback).
#[no_mangle]
pub unsafe extern "C" fn tp_set_log_callback(
    p: *mut tp_publisher,
    callback: tp_log_callback,
    userdata: *mut std::ffi::c_void,
) -> tp_status {
    // SAFETY: the export's contract is with_handle's.
    unsafe {
        with_handle(p, "tp_set_log_callback", |h| {
            h.inner
                .set_log(callback.map(|cb| callbacks::adapt_log(cb, userdata)));
            tp_status::TP_OK
        })
    }
}

/// Cancels the `tp_finalize_and_publish` or `tp_preflight` running on handle `p`; for a host's
/// Cancel button. Safe from any thread (also from inside the callbacks), at any time while the
/// handle is alive; never blocks and never calls a callback. The running call stops within about a
/// second, wherever it is (sending or awaiting a request, sleeping before a retry, polling the
/// publish job, waiting for a turn at a shared session), signs out, keeps the spool with its
/// manifest as any failed publish does (paths and the `tabpub resume` command in `tp_last_error`),
/// and returns `TP_ERR_CANCELLED`; finalize may then be called again (a cancel that came after the
/// commit was sent may have left it applied on the server: the next finalize checks for that first
/// instead of publishing twice). A cancel made while no such call runs is kept for the next one on
/// the handle, which returns `TP_ERR_CANCELLED` at once without any network request: a Cancel
/// pressed just before the publish starts is never lost. The request is used up by the call it
/// stops, so the call after that runs normally. Returns `TP_OK`, or `TP_ERR_INVALID_ARGUMENT` when
/// `p` is NULL. Like every use of the handle, it must not be called after, or at the same time as,
/// `tp_free(p)`.
#[no_mangle]
pub unsafe extern "C" fn tp_cancel(p: *mut tp_publisher) -> tp_status {
    ffi_boundary!(tp_status::TP_ERR_INTERNAL, {
        // SAFETY: NULL or a live handle per the contract; only its canceller is touched, not
        // the state a running call holds.
        match unsafe { tp_publisher::canceller(p) } {
            None => null_handle("tp_cancel"),
            Some(cancel) => {
                cancel.cancel();
                tp_status::TP_OK
            }
        }
    })
}

/// Checks now, before any data is ready, everything a publish will need except the data:
/// the server, the credentials, the site, the project, and the mode against what exists
/// (`append` needs the data source, `create_new` must not find it). Signs in and out again at
/// once, so no session is held while the upstream runs. For hosts that want to fail fast when a
/// workflow starts. Does not change the handle's state; may be called before or between
/// `tp_feed_chunk` calls. Failures are reported as by `tp_finalize_and_publish`.
#[no_mangle]
pub unsafe extern "C" fn tp_preflight(p: *mut tp_publisher) -> tp_status {
    // SAFETY: the export's contract is with_handle's.
    unsafe {
        with_handle(p, "tp_preflight", |h| {
            let result = h.inner.preflight();
            report(h, "tp_preflight", result)
        })
    }
}

/// Publishes everything fed so far: reads server info, signs in (only now), resolves the
/// project, uploads (one request below 64 MiB, chunked above), publishes, waits for the job if
/// published asynchronously, and signs out. Blocks until done. Signs in again when the session
/// ends mid-way, retries what is safe to retry, restarts an upload whose outcome is unknown,
/// and checks whether a commit applied before sending it again. On success the spool is
/// deleted (on a thread, so the call returns as soon as Tableau has the data; `tp_free`
/// waits for the deletion) and `tp_result_json` describes the data source. On failure the spool is kept on
/// disk with a JSON manifest beside it (both paths and the resume command are in
/// `tp_last_error`) and the call may be repeated. Must not be called from inside a tokio
/// runtime.
#[no_mangle]
pub unsafe extern "C" fn tp_finalize_and_publish(p: *mut tp_publisher) -> tp_status {
    // SAFETY: the export's contract is with_handle's.
    unsafe {
        with_handle(p, "tp_finalize_and_publish", |h| {
            match h.inner.finalize_and_publish() {
                Ok(result) => {
                    let json = serde_json::to_string(result).unwrap_or_default();
                    h.result_json = Some(to_cstring(&json));
                    tp_status::TP_OK
                }
                Err(e) => fail(h, "tp_finalize_and_publish", &e),
            }
        })
    }
}

/// The UTF-8 message of the last failure on handle `p` (Tableau's error code, summary, detail
/// and HTTP status when the server refused, and what to do). With `p == NULL`, the calling
/// thread's last `tp_init` failure (or NULL-handle error). Empty string when there was none.
/// Never NULL, never contains a secret. Owned by the library; valid until the next call on
/// the same handle (or, for NULL, the thread's next `tp_init`): every call clears it, even
/// one that succeeds, so read it right after the call that failed. While another call is
/// using the handle (from inside its progress callback), a message saying so.
#[no_mangle]
pub unsafe extern "C" fn tp_last_error(p: *const tp_publisher) -> *const c_char {
    ffi_boundary!(c"".as_ptr(), {
        // SAFETY: NULL or a live handle per the contract.
        match unsafe { tp_publisher::access(p) } {
            Access::Held(h) | Access::Poisoned(h) => h.last_error.as_ptr(),
            Access::Busy => tp_publisher::busy_message(),
            Access::Null => init_error(),
        }
    })
}

/// After a successful `tp_finalize_and_publish`: a JSON object with `datasource_id`,
/// `datasource_name`, `content_url`, `project_id`, `site_id`, `bytes`, `sha256`, `file_type`,
/// `mode`, `chunked`, `chunks`, `job_id`, `api_version`, `sign_ins`, `upload_sessions` and
/// `http_requests`. NULL before success, when `p` is NULL, or while another call is using the
/// handle. Owned by the handle; valid until `tp_free`.
#[no_mangle]
pub unsafe extern "C" fn tp_result_json(p: *const tp_publisher) -> *const c_char {
    ffi_boundary!(ptr::null(), {
        // SAFETY: NULL or a live handle per the contract.
        match unsafe { tp_publisher::access(p) } {
            Access::Held(h) => h.result_json.as_ref().map_or(ptr::null(), |s| s.as_ptr()),
            Access::Poisoned(_) | Access::Busy | Access::Null => ptr::null(),
        }
    })
}

/// Releases a handle, stopping its threads (also a handle whose earlier call returned
/// `TP_ERR_INTERNAL`, which answers nothing else): waits for the deletion of a published spool to
/// finish. A spool that was not published successfully is deleted unless a failed
/// `tp_finalize_and_publish` kept it (then it stays on disk for a later publish). NULL is a
/// no-op, and so is a handle another call is still using (from inside its progress callback):
/// free it after that call returns. The handle must not be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn tp_free(p: *mut tp_publisher) {
    ffi_boundary!((), {
        // SAFETY: NULL or a pointer from tp_init, not yet freed, per the contract.
        unsafe { tp_publisher::free(p) }
    })
}

/// The library version, e.g. "0.1.0". Static; never NULL.
#[no_mangle]
pub extern "C" fn tp_version() -> *const c_char {
    status::VERSION.as_ptr()
}

/// The C ABI version this library implements; equals `TP_ABI_VERSION` from the header it was
/// built with. A host should refuse to run when the two differ.
#[no_mangle]
pub extern "C" fn tp_abi_version() -> u32 {
    TP_ABI_VERSION
}

/// A static, NUL-terminated description of a `tp_status` value ("unknown status" for values
/// this version does not know). Never NULL.
#[no_mangle]
pub extern "C" fn tp_status_str(status: i32) -> *const c_char {
    status::status_str(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_that_panics_poisons_the_handle_and_tp_free_still_releases_it() {
        let dir = tempfile::tempdir().unwrap();
        let config = serde_json::json!({
            "server_url": "http://127.0.0.1:9", "site": "",
            "auth": {"method": "pat", "token_name": "ci", "token_secret": "s"},
            "project": "P", "datasource_name": "D", "mode": "overwrite",
            "spool_dir": dir.path(),
        })
        .to_string();
        let config = std::ffi::CString::new(config).unwrap();
        let mut p: *mut tp_publisher = ptr::null_mut();
        // SAFETY: valid pointers; the handle is freed below.
        unsafe {
            assert_eq!(tp_init(config.as_ptr(), &mut p), tp_status::TP_OK);
            assert_eq!(tp_feed_chunk(p, b"Hyper".as_ptr(), 5), tp_status::TP_OK);
            let rc = with_handle(p, "tp_feed_chunk", |_| panic!("a bug inside a call"));
            assert_eq!(rc, tp_status::TP_ERR_INTERNAL);
            let msg = CStr::from_ptr(tp_last_error(p))
                .to_str()
                .unwrap()
                .to_owned();
            assert!(msg.contains("internal error"), "{msg}");
            for _ in 0..2 {
                assert_eq!(
                    tp_feed_chunk(p, b"x".as_ptr(), 1),
                    tp_status::TP_ERR_INTERNAL,
                    "every later call is refused"
                );
                let msg = CStr::from_ptr(tp_last_error(p)).to_str().unwrap();
                assert!(msg.starts_with("tp_feed_chunk: an earlier call"), "{msg}");
            }
            assert_eq!(tp_preflight(p), tp_status::TP_ERR_INTERNAL);
            assert!(tp_result_json(p).is_null());
            tp_free(p);
        }
        // The spool the handle had is gone with it (it was never kept).
        let left = std::fs::read_dir(dir.path().join("tableau-publisher"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".spool"))
            .count();
        assert_eq!(
            left, 0,
            "tp_free released the poisoned handle and its spool"
        );
    }
}
