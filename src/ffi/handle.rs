//! The opaque handle and the only pointer casts.
//!
//! A call holds the handle's lock for its whole duration. A second call meanwhile (from inside
//! the progress callback, or from another thread) finds it held and is refused, instead of
//! aliasing state the first call is using. A call that panicked leaves the lock poisoned: the
//! handle then answers `TP_ERR_INTERNAL` to everything but `tp_free`, which still releases it.

use std::ffi::{c_char, CString};
use std::sync::{Mutex, MutexGuard, TryLockError};

use crate::cancel::Canceller;
use crate::publisher::Publisher;

/// What `tp_last_error` says, and why a call gets `TP_ERR_STATE`, while the handle is in use.
const BUSY: &std::ffi::CStr = c"the handle is in use by a call that has not returned (a call from inside its progress callback, or from another thread at the same time): make the call after that one returns";

/// An opaque publisher handle: one configuration, one spool, one publish.
/// Create with `tp_init`, release with `tp_free`. Use it from one thread at a time; a call
/// made while another call on the same handle is running is refused with `TP_ERR_STATE`
/// (except `tp_cancel`, which may be called from any thread at any time).
#[allow(non_camel_case_types)]
pub struct tp_publisher {
    state: Mutex<Handle>,
    /// Outside the lock: `tp_cancel` reaches it while a call holds the lock.
    cancel: Canceller,
}

/// The handle's state, reachable only through its lock.
pub(crate) struct Handle {
    pub(crate) inner: Publisher,
    pub(crate) last_error: CString,
    pub(crate) result_json: Option<CString>,
}

/// What a call finds behind a pointer from C.
pub(crate) enum Access<'a> {
    Null,
    Busy,
    /// An earlier call panicked with the handle held: its state may be inconsistent.
    Poisoned(MutexGuard<'a, Handle>),
    /// Exclusive use for one call; released when dropped (also while unwinding).
    Held(MutexGuard<'a, Handle>),
}

impl tp_publisher {
    pub(crate) fn new(inner: Publisher) -> Box<tp_publisher> {
        Box::new(tp_publisher {
            cancel: inner.canceller(),
            state: Mutex::new(Handle {
                inner,
                last_error: CString::default(),
                result_json: None,
            }),
        })
    }

    /// Takes the handle behind a pointer from C for one call; never blocks.
    ///
    /// # Safety
    /// `p` is NULL or a pointer returned by `tp_init` and not yet freed.
    pub(crate) unsafe fn access<'a>(p: *const tp_publisher) -> Access<'a> {
        // SAFETY: NULL or live per the caller's contract; only the lock is reached through it.
        let Some(handle) = (unsafe { p.as_ref() }) else {
            return Access::Null;
        };
        match handle.state.try_lock() {
            Ok(held) => Access::Held(held),
            Err(TryLockError::WouldBlock) => Access::Busy,
            Err(TryLockError::Poisoned(e)) => Access::Poisoned(e.into_inner()),
        }
    }

    /// The canceller of the handle behind a pointer from C, without its lock; never blocks.
    ///
    /// # Safety
    /// `p` is NULL or a pointer returned by `tp_init` and not yet freed.
    pub(crate) unsafe fn canceller<'a>(p: *const tp_publisher) -> Option<&'a Canceller> {
        // SAFETY: NULL or live per the caller's contract; only the canceller is reached.
        unsafe { p.as_ref() }.map(|h| &h.cancel)
    }

    /// The message for a busy handle, as a C string.
    pub(crate) fn busy_message() -> *const c_char {
        BUSY.as_ptr()
    }

    /// Frees a handle from `tp_init`, unless a call is still using it (then it is left alone).
    /// A poisoned handle is freed too.
    ///
    /// # Safety
    /// `p` is a pointer returned by `tp_init` and not yet freed.
    pub(crate) unsafe fn free(p: *mut tp_publisher) {
        // SAFETY: per the caller's contract.
        match unsafe { Self::access(p) } {
            Access::Held(guard) | Access::Poisoned(guard) => {
                drop(guard);
                // SAFETY: from Box::into_raw in tp_init; no call is using it (we just held its
                // lock, and a call on a handle being freed is the caller's contract violation).
                drop(unsafe { Box::from_raw(p) });
            }
            Access::Null | Access::Busy => {}
        }
    }
}
