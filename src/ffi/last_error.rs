//! Error messages for C callers: per handle, and per thread for failures before a handle exists.

use std::cell::RefCell;
use std::ffi::{c_char, CString};

thread_local! {
    static INIT_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Turns a message into a C string, replacing interior NULs so nothing is cut off.
pub(crate) fn to_cstring(message: &str) -> CString {
    CString::new(message.replace('\0', "\u{fffd}")).unwrap_or_default()
}

/// Records the calling thread's last `tp_init` failure.
pub(crate) fn set_init_error(message: &str) {
    INIT_ERROR.with(|e| *e.borrow_mut() = to_cstring(message));
}

/// The calling thread's last `tp_init` failure; valid until the thread's next `tp_init`.
pub(crate) fn init_error() -> *const c_char {
    INIT_ERROR.with(|e| e.borrow().as_ptr())
}
