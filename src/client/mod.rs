//! The Tableau REST client: HTTP transport and error mapping (`http`), XML response parsing
//! ([`xml`]), multipart bodies streamed from disk (`multipart`) and the calls the publisher
//! makes (`api`). Written from Tableau's documentation and its client's fixtures; shares no
//! code with the emulator.
//!
//! Internal: only [`xml`] is reachable from outside, for the fuzzing smoke test.

pub(crate) mod activity;
pub(crate) mod api;
pub(crate) mod http;
pub(crate) mod jwt;
pub(crate) mod lease;
pub(crate) mod multipart;
pub(crate) mod retry;
pub(crate) mod session;
pub mod xml;
pub(crate) mod xml_attr;

pub(crate) use api::Api;
