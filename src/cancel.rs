//! [`Canceller`]: stopping a blocking call from another thread (a host's Cancel button).
//!
//! The request is a flag plus a wake-up for the I/O runtime of the call under way, which waits
//! for it alongside its work (network reads and writes, back-off sleeps, job polling, the wait
//! for a turn at a shared session) and drops that work as soon as it is set. It lives outside
//! the publisher's state, so asking never waits for the call it stops.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Cancels the [`Publisher::finalize_and_publish`](crate::Publisher::finalize_and_publish) or
/// [`Publisher::preflight`](crate::Publisher::preflight) under way on its publisher, from any
/// thread. Get one with [`Publisher::canceller`](crate::Publisher::canceller); clones cancel
/// the same publisher.
///
/// The call stops within about a second with [`ErrorKind::Cancelled`](crate::ErrorKind),
/// signs out and keeps the data, as any failed publish does. A cancel made while no call runs
/// is kept for the next one, which then fails at once without any network request, so a
/// cancel made just before a call starts is never lost; it is used up by the call it stops.
#[derive(Clone, Debug, Default)]
pub struct Canceller(Arc<State>);

#[derive(Debug, Default)]
struct State {
    requested: AtomicBool,
    wake: tokio::sync::Notify,
}

impl Canceller {
    /// Asks the call under way (or, if none, the next one) to stop. Never blocks.
    pub fn cancel(&self) {
        self.0.requested.store(true, Ordering::SeqCst);
        self.0.wake.notify_waiters();
    }

    /// Whether a cancel was asked for and not used up yet.
    pub fn is_requested(&self) -> bool {
        self.0.requested.load(Ordering::SeqCst)
    }

    /// Uses the request up (the call it stopped has ended).
    pub(crate) fn clear(&self) {
        self.0.requested.store(false, Ordering::SeqCst);
    }

    /// Wakes whoever waits in [`until`](Self::until) to look at its condition again.
    pub(crate) fn wake(&self) {
        self.0.wake.notify_waiters();
    }

    /// Returns once `stop()` holds, looking again at every [`cancel`](Self::cancel) and
    /// [`wake`](Self::wake).
    pub(crate) async fn until(&self, stop: impl Fn() -> bool) {
        loop {
            let notified = self.0.wake.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before looking, so a wake-up between the look and the wait is not lost.
            notified.as_mut().enable();
            if stop() {
                return;
            }
            notified.await;
        }
    }
}
