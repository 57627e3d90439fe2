//! The panic boundary used inside every export: a panic becomes `TP_ERR_INTERNAL` (or the
//! given fallback value) instead of unwinding into the host, which Rust would abort on.

/// Runs `$body`, returning `$fallback` if it panics. Wraps the body, not the function, so
/// cbindgen still sees each export's plain signature.
macro_rules! ffi_boundary {
    ($fallback:expr, $body:block) => {
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| $body)) {
            Ok(value) => value,
            Err(_) => $fallback,
        }
    };
}

pub(crate) use ffi_boundary;
