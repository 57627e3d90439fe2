//! One Tableau session shared by every client of this process that signs in to the same
//! server and site with the same credentials.
//!
//! Tableau keeps one session per personal access token: a second sign-in with the same PAT ends
//! the first session. So handles that publish at once with one PAT must not each sign in: they
//! share one session. The first to need it signs in; the others use the same token. When
//! Tableau says it ended, one of them signs in again (single-flight: the others wait for it and
//! retry with the new token); it is signed out when the last client using it is done, so one
//! handle's failure, cancel or free never ends a session others are using.
//!
//! The key is the server, the site, the credential identity (token name, user name, client id)
//! and a SHA-256 of the secret, so a handle with a wrong secret never rides on another's
//! session. The secret itself is never kept. Other processes of the same user share the
//! session too, through a lease file ([`super::lease`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::lease::LeaseFile;
use crate::error::Result;

/// A session token and what came with it.
pub(crate) struct Token {
    /// The `X-Tableau-Auth` value (secret).
    pub(crate) value: String,
    /// The site's LUID, for `/sites/{id}` URLs.
    pub(crate) site_id: String,
    /// When it was obtained.
    pub(crate) signed_in_at: Instant,
    /// Counts the sign-ins of this shared session: tells a stale token from the current one.
    pub(crate) generation: u64,
}

impl Token {
    pub(crate) fn age(&self) -> Duration {
        self.signed_in_at.elapsed()
    }
}

/// What a sign-in returned: the token and the site's LUID.
pub(crate) struct SignedIn {
    pub(crate) token: String,
    pub(crate) site_id: String,
}

/// The session of one server, site and credential, shared by the clients using it.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Held while signing in, so that only one client does (across threads and runtimes).
    signing_in: tokio::sync::Mutex<()>,
    /// The same session for other processes; `None` without a safe private directory.
    lease: Option<LeaseFile>,
    /// Set when sharing failed (the server ends a session used from two connections at once):
    /// from then on the clients take turns, each holding `turn` for the rest of its publish.
    queued: AtomicBool,
    turn: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Default)]
struct State {
    token: Option<Arc<Token>>,
    generation: u64,
    users: usize,
}

fn registry() -> &'static Mutex<HashMap<String, Weak<Shared>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Weak<Shared>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// Joins the shared session for `key` (creating it if no client uses one), as one more user.
pub(crate) fn join(key: &str) -> Arc<Shared> {
    let mut map = registry().lock().unwrap_or_else(|e| e.into_inner());
    map.retain(|_, weak| weak.strong_count() > 0);
    let shared = match map.get(key).and_then(Weak::upgrade) {
        Some(s) => s,
        None => {
            let s = Arc::new(Shared {
                state: Mutex::new(State::default()),
                signing_in: tokio::sync::Mutex::new(()),
                lease: LeaseFile::for_key(key),
                queued: AtomicBool::new(false),
                turn: Arc::new(tokio::sync::Mutex::new(())),
            });
            map.insert(key.to_owned(), Arc::downgrade(&s));
            s
        }
    };
    shared.lock().users += 1;
    shared
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The token in use, if signed in.
    pub(crate) fn current(&self) -> Option<Arc<Token>> {
        self.lock().token.clone()
    }

    /// A token newer than `stale` (the generation the caller found dead, or `None` when it has
    /// none yet): the current one if another client already replaced `stale`, else another
    /// process's from the lease, else the result of `sign_in`, which only one client of all
    /// processes runs at a time. `true` when this call signed in. `None` once the clients take
    /// turns ([`Shared::queue`]): then nobody signs in for the others.
    pub(crate) async fn renew<F>(
        &self,
        stale: Option<u64>,
        sign_in: F,
    ) -> Result<Option<(Arc<Token>, bool)>>
    where
        F: std::future::Future<Output = Result<SignedIn>>,
    {
        let _only_one = self.signing_in.lock().await;
        if self.queued() {
            return Ok(None);
        }
        let current = self.current();
        if let Some(t) = &current {
            if Some(t.generation) != stale {
                return Ok(Some((t.clone(), false)));
            }
        }
        let dead = current.map(|t| t.value.clone());
        let locked = match &self.lease {
            Some(lease) => lease.lock().await,
            None => None,
        };
        let mut lease = locked.as_ref().map(|l| l.read()).unwrap_or_default();
        let me = std::process::id();
        if let (Some(token), Some(site_id)) = (lease.token.clone(), lease.site_id.clone()) {
            if Some(&token) != dead.as_ref() {
                if let Some(l) = &locked {
                    if !lease.holders.contains(&me) {
                        lease.holders.push(me);
                        l.write(&lease);
                    }
                }
                return Ok(Some((self.install(SignedIn { token, site_id }), false)));
            }
        }
        let signed_in = sign_in.await?;
        if let Some(l) = &locked {
            lease.token = Some(signed_in.token.clone());
            lease.site_id = Some(signed_in.site_id.clone());
            if !lease.holders.contains(&me) {
                lease.holders.push(me);
            }
            l.write(&lease);
        }
        Ok(Some((self.install(signed_in), true)))
    }

    /// A token for the client whose turn it is, never given to another client.
    pub(crate) fn private(&self, signed_in: SignedIn) -> Arc<Token> {
        let mut state = self.lock();
        state.generation += 1;
        Arc::new(Token {
            value: signed_in.token,
            site_id: signed_in.site_id,
            signed_in_at: Instant::now(),
            generation: state.generation,
        })
    }

    fn install(&self, signed_in: SignedIn) -> Arc<Token> {
        let mut state = self.lock();
        state.generation += 1;
        let token = Arc::new(Token {
            value: signed_in.token,
            site_id: signed_in.site_id,
            signed_in_at: Instant::now(),
            generation: state.generation,
        });
        state.token = Some(token.clone());
        token
    }

    /// One client is done. When it was the last of this process, the process leaves the
    /// lease; when no other process holds it either, the token is returned for the caller to
    /// sign out with, and the next client signs in afresh.
    pub(crate) async fn leave(&self) -> Option<Arc<Token>> {
        let token = {
            let mut state = self.lock();
            state.users = state.users.saturating_sub(1);
            if state.users > 0 {
                return None;
            }
            state.token.take()
        };
        if let Some(locked) = match &self.lease {
            Some(lease) => lease.lock().await,
            None => None,
        } {
            let mut lease = locked.read();
            let me = std::process::id();
            lease.holders.retain(|pid| *pid != me);
            locked.write(&lease);
            if !lease.holders.is_empty() {
                return None; // another process uses the session
            }
        }
        token
    }

    /// As [`leave`](Self::leave), without waiting for the lease and without signing out: for a
    /// client dropped before it could sign out.
    pub(crate) fn leave_quietly(&self) {
        let mut state = self.lock();
        state.users = state.users.saturating_sub(1);
        if state.users == 0 {
            state.token = None;
        }
    }

    /// Clients of this process using the session.
    pub(crate) fn users(&self) -> usize {
        self.lock().users
    }

    /// Whether the clients take turns instead of sharing the token.
    pub(crate) fn queued(&self) -> bool {
        self.queued.load(Ordering::Relaxed)
    }

    /// From now on the clients take turns: a token shared by two clients at once did not
    /// survive (the server ends a session used from a second connection).
    pub(crate) fn queue(&self) {
        self.queued.store(true, Ordering::Relaxed);
    }

    /// Waits for this client's turn; it lasts until the guard is dropped.
    pub(crate) async fn take_turn(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.turn.clone().lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A key no earlier run used: leases outlive the process, and process ids are reused
    /// (quickly under Wine), so a key of the pid alone can find an earlier run's token.
    fn unique_key(what: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!("test:{what}:{}:{nanos}", std::process::id())
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn many_threads_renewing_the_same_stale_token_sign_in_once() {
        let shared = join(&unique_key("single-flight"));
        let sign_ins = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let (shared, sign_ins) = (shared.clone(), sign_ins.clone());
                std::thread::spawn(move || {
                    run(async {
                        let (t, _) = shared
                            .renew(None, async {
                                sign_ins.fetch_add(1, Ordering::SeqCst);
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                Ok(SignedIn {
                                    token: "t1".into(),
                                    site_id: "s".into(),
                                })
                            })
                            .await
                            .unwrap()
                            .unwrap();
                        t.generation
                    })
                })
            })
            .collect();
        let generations: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(
            sign_ins.load(Ordering::SeqCst),
            1,
            "one sign-in for six threads"
        );
        assert!(generations.iter().all(|g| *g == 1));
        // The token dies: the first to notice renews, a late one with the same stale
        // generation gets the new token without signing in.
        let (t2, did) = run(shared.renew(Some(1), async {
            Ok(SignedIn {
                token: "t2".into(),
                site_id: "s".into(),
            })
        }))
        .unwrap()
        .unwrap();
        assert!(did);
        let (t2b, did) = run(shared.renew(Some(1), async { panic!("must not sign in") }))
            .unwrap()
            .unwrap();
        assert!(!did);
        assert_eq!((t2.generation, t2b.value.as_str()), (2, "t2"));
    }

    #[test]
    fn the_last_user_leaving_takes_the_token_to_sign_out() {
        let key = format!("test:leave:{}", std::process::id());
        let a = join(&key);
        let b = join(&key);
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.users(), 2);
        run(a.renew(None, async {
            Ok(SignedIn {
                token: "t".into(),
                site_id: "s".into(),
            })
        }))
        .unwrap()
        .unwrap();
        assert!(run(a.leave()).is_none(), "b still uses it");
        assert_eq!(
            run(b.leave()).map(|t| t.value.clone()).as_deref(),
            Some("t")
        );
        assert!(b.current().is_none());
        let other = join(&unique_key("another-key"));
        assert!(!Arc::ptr_eq(&a, &other));
        other.leave_quietly();
    }
}
