//! The opaque handle and the only pointer casts.
//!
//! A call holds the handle for its whole duration. A second call meanwhile (from inside the
//! progress callback, or from another thread) finds it busy and is refused, instead of
//! aliasing state the first call is using.

use std::cell::UnsafeCell;
use std::ffi::{c_char, CString};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::publisher::Publisher;

/// What `tp_last_error` says, and why a call gets `TP_ERR_STATE`, while the handle is in use.
const BUSY: &std::ffi::CStr = c"the handle is in use by a call that has not returned (a call from inside its progress callback, or from another thread at the same time): make the call after that one returns";

/// An opaque publisher handle: one configuration, one spool, one publish.
/// Create with `tp_init`, release with `tp_free`. Use it from one thread at a time; a call
/// made while another call on the same handle is running is refused with `TP_ERR_STATE`.
#[allow(non_camel_case_types)]
pub struct tp_publisher {
    busy: AtomicBool,
    state: UnsafeCell<Handle>,
}

/// The handle's state, reachable only through [`Held`].
pub(crate) struct Handle {
    pub(crate) inner: Publisher,
    pub(crate) last_error: CString,
    pub(crate) result_json: Option<CString>,
}

/// What a call finds behind a pointer from C.
pub(crate) enum Access<'a> {
    Null,
    Busy,
    Held(Held<'a>),
}

/// Exclusive use of a handle for one call; released when dropped (also while unwinding).
pub(crate) struct Held<'a> {
    handle: &'a tp_publisher,
}

impl std::ops::Deref for Held<'_> {
    type Target = Handle;
    fn deref(&self) -> &Handle {
        // SAFETY: `busy` was false and is now ours: no other reference to the state exists.
        unsafe { &*self.handle.state.get() }
    }
}

impl std::ops::DerefMut for Held<'_> {
    fn deref_mut(&mut self) -> &mut Handle {
        // SAFETY: as in `deref`, and `self` is borrowed mutably.
        unsafe { &mut *self.handle.state.get() }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.handle.busy.store(false, Ordering::Release);
    }
}

impl tp_publisher {
    pub(crate) fn new(inner: Publisher) -> Box<tp_publisher> {
        Box::new(tp_publisher {
            busy: AtomicBool::new(false),
            state: UnsafeCell::new(Handle {
                inner,
                last_error: CString::default(),
                result_json: None,
            }),
        })
    }

    /// Takes the handle behind a pointer from C for one call.
    ///
    /// # Safety
    /// `p` is NULL or a pointer returned by `tp_init` and not yet freed.
    pub(crate) unsafe fn access<'a>(p: *const tp_publisher) -> Access<'a> {
        // SAFETY: NULL or live per the caller's contract; only `busy` (atomic) and the
        // `UnsafeCell` are reached through this shared reference.
        let Some(handle) = (unsafe { p.as_ref() }) else {
            return Access::Null;
        };
        if handle.busy.swap(true, Ordering::Acquire) {
            return Access::Busy;
        }
        Access::Held(Held { handle })
    }

    /// The message for a busy handle, as a C string.
    pub(crate) fn busy_message() -> *const c_char {
        BUSY.as_ptr()
    }

    /// Frees a handle from `tp_init`, unless a call is still using it (then it is left alone).
    ///
    /// # Safety
    /// `p` is a pointer returned by `tp_init` and not yet freed.
    pub(crate) unsafe fn free(p: *mut tp_publisher) {
        // SAFETY: per the caller's contract.
        match unsafe { Self::access(p) } {
            Access::Held(held) => {
                std::mem::forget(held); // the box goes; nobody can hold it again
                                        // SAFETY: from Box::into_raw in tp_init, and no call is using it.
                drop(unsafe { Box::from_raw(p) });
            }
            Access::Null | Access::Busy => {}
        }
    }
}
