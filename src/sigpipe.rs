//! Keeps SIGPIPE away from the host process.
//!
//! A write to a connection the server has reset raises SIGPIPE on the writing thread, and a C,
//! C++, C# or Python host has SIGPIPE's default action: the process dies (exit 141, nothing
//! printed). Rust programs ignore SIGPIPE before `main`, so only a foreign host shows this.
//! The HTTP stack writes with `writev`, which has no `MSG_NOSIGNAL`, so instead every network
//! call runs under [`Guard`]: SIGPIPE is blocked on the calling thread (the only thread that
//! writes to sockets: the runtime is single-threaded, and threads it starts inherit the mask),
//! and any SIGPIPE our writes left pending is consumed before the thread's mask is restored.
//! The write itself then fails with `EPIPE`, which the client handles as a broken connection.
//! Nothing process-wide changes: no `signal()`, no handler, other threads untouched.

/// SIGPIPE blocked on this thread until dropped; see the module docs.
pub(crate) struct Guard {
    #[cfg(unix)]
    state: Option<unix::Saved>,
}

impl Guard {
    /// Blocks SIGPIPE on the calling thread.
    pub(crate) fn block() -> Guard {
        Guard {
            #[cfg(unix)]
            state: unix::block(),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(saved) = self.state.take() {
            unix::restore(saved);
        }
    }
}

#[cfg(unix)]
mod unix {
    use std::mem::MaybeUninit;

    /// What to restore when the guard ends.
    pub(super) struct Saved {
        /// The thread's mask before the guard.
        mask: libc::sigset_t,
        /// A SIGPIPE was already pending (the host's own): leave it for the host.
        was_pending: bool,
    }

    fn sigpipe_set() -> libc::sigset_t {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the set; sigaddset takes a valid set and signal.
        unsafe {
            libc::sigemptyset(set.as_mut_ptr());
            libc::sigaddset(set.as_mut_ptr(), libc::SIGPIPE);
            set.assume_init()
        }
    }

    fn sigpipe_pending() -> bool {
        let mut pending = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigpending writes the set it is given.
        unsafe {
            libc::sigpending(pending.as_mut_ptr()) == 0
                && libc::sigismember(pending.as_ptr(), libc::SIGPIPE) == 1
        }
    }

    pub(super) fn block() -> Option<Saved> {
        let set = sigpipe_set();
        let mut old = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: valid sets; changes only the calling thread's mask.
        if unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, old.as_mut_ptr()) } != 0 {
            return None;
        }
        Some(Saved {
            // SAFETY: pthread_sigmask succeeded and wrote the old mask.
            mask: unsafe { old.assume_init() },
            was_pending: sigpipe_pending(),
        })
    }

    pub(super) fn restore(saved: Saved) {
        if !saved.was_pending {
            let set = sigpipe_set();
            let zero = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // Standard signals do not queue: one wait consumes it; bounded all the same.
            for _ in 0..4 {
                if !sigpipe_pending() {
                    break;
                }
                // SAFETY: valid set and timeout; SIGPIPE is blocked here, so this only dequeues it.
                unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) };
            }
        }
        // SAFETY: restores the mask this thread had before `block`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &saved.mask, std::ptr::null_mut()) };
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn blocked() -> bool {
            let mut cur = MaybeUninit::<libc::sigset_t>::uninit();
            // SAFETY: queries the calling thread's mask.
            unsafe {
                libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), cur.as_mut_ptr());
                libc::sigismember(cur.as_ptr(), libc::SIGPIPE) == 1
            }
        }

        #[test]
        fn a_sigpipe_raised_under_the_guard_is_consumed_and_the_mask_restored() {
            // On a thread of its own, so the test harness's other threads are not involved.
            std::thread::spawn(|| {
                assert!(!blocked());
                let guard = crate::sigpipe::Guard::block();
                assert!(blocked());
                // SAFETY: raises SIGPIPE on this thread only; it is blocked, so it stays pending.
                unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGPIPE) };
                assert!(sigpipe_pending());
                drop(guard);
                assert!(!blocked(), "the mask is as before");
                assert!(!sigpipe_pending(), "nothing left for the host");
            })
            .join()
            .unwrap();
        }
    }
}
