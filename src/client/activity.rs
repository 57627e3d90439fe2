//! When a request last made progress, for a timeout that counts from the last byte handed to
//! the connection rather than from the start: a multi-GB upload over a slow link that keeps
//! moving never times out, and a stalled one fails after `request_timeout_secs`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::time::{Duration, Instant};

/// The time of the latest progress of the request under way.
#[derive(Clone)]
pub struct Activity(Arc<Stamp>);

struct Stamp {
    origin: Instant,
    /// Milliseconds from `origin` to the latest progress.
    latest_ms: AtomicU64,
}

impl Activity {
    /// Progress now.
    pub fn new() -> Activity {
        Activity(Arc::new(Stamp {
            origin: Instant::now(),
            latest_ms: AtomicU64::new(0),
        }))
    }

    /// Records progress now (a request starting, a piece of the body handed over).
    pub fn touch(&self) {
        let ms = self.0.origin.elapsed().as_millis() as u64;
        self.0.latest_ms.store(ms, Ordering::Relaxed);
    }

    /// When a request that makes no more progress runs out of `idle` time.
    pub fn deadline(&self, idle: Duration) -> Instant {
        self.0.origin + Duration::from_millis(self.0.latest_ms.load(Ordering::Relaxed)) + idle
    }
}

impl Default for Activity {
    fn default() -> Activity {
        Activity::new()
    }
}

/// Runs `request` until it completes, or until `idle` passes with no [`Activity::touch`].
/// `Err(())` is the timeout.
pub async fn until_idle<T>(
    activity: &Activity,
    idle: Duration,
    request: impl std::future::Future<Output = T>,
) -> Result<T, ()> {
    use futures_util::future::{select, Either};
    activity.touch();
    let mut request = std::pin::pin!(request);
    loop {
        let deadline = activity.deadline(idle);
        let timer = std::pin::pin!(tokio::time::sleep_until(deadline));
        match select(request.as_mut(), timer).await {
            Either::Left((done, _)) => return Ok(done),
            Either::Right(((), _)) if activity.deadline(idle) <= Instant::now() => return Err(()),
            Either::Right(_) => {} // progress meanwhile: wait from the new deadline
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_request_that_keeps_moving_does_not_time_out() {
        run(async {
            let activity = Activity::new();
            let mover = activity.clone();
            let slow = async move {
                for _ in 0..20 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    mover.touch();
                }
                "done"
            };
            // 1 s in all, five times the idle time, never 200 ms without progress.
            assert_eq!(
                until_idle(&activity, Duration::from_millis(200), slow).await,
                Ok("done")
            );
        })
    }

    #[test]
    fn a_stalled_request_times_out_after_the_idle_time() {
        run(async {
            let activity = Activity::new();
            let mover = activity.clone();
            let started = Instant::now();
            let stalls = async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                mover.touch();
                std::future::pending::<()>().await
            };
            assert_eq!(
                until_idle(&activity, Duration::from_millis(300), stalls).await,
                Err(())
            );
            assert!(
                started.elapsed() >= Duration::from_millis(400),
                "counted from the last progress, not the start: {:?}",
                started.elapsed()
            );
        })
    }
}
