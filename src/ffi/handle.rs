//! The opaque handle and the only pointer casts.

use std::ffi::CString;

use crate::publisher::Publisher;

/// An opaque publisher handle: one configuration, one spool, one publish.
/// Create with `tp_init`, release with `tp_free`. Not thread-safe: use one handle per thread
/// at a time.
#[allow(non_camel_case_types)]
pub struct tp_publisher {
    pub(crate) inner: Publisher,
    pub(crate) last_error: CString,
    pub(crate) result_json: Option<CString>,
}

impl tp_publisher {
    pub(crate) fn new(inner: Publisher) -> Box<tp_publisher> {
        Box::new(tp_publisher {
            inner,
            last_error: CString::default(),
            result_json: None,
        })
    }

    /// Borrows the handle behind a pointer from C.
    ///
    /// # Safety
    /// `p` is NULL or a pointer returned by `tp_init` and not yet freed, used by one thread.
    pub(crate) unsafe fn from_ptr<'a>(p: *mut tp_publisher) -> Option<&'a mut tp_publisher> {
        unsafe { p.as_mut() }
    }

    /// As [`from_ptr`](Self::from_ptr), read-only.
    ///
    /// # Safety
    /// As for `from_ptr`.
    pub(crate) unsafe fn from_const_ptr<'a>(p: *const tp_publisher) -> Option<&'a tp_publisher> {
        unsafe { p.as_ref() }
    }
}
