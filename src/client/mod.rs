//! The Tableau REST client: HTTP transport and error mapping ([`http`]), XML response parsing
//! ([`xml`]), multipart bodies streamed from disk ([`multipart`]) and the calls the publisher
//! makes ([`api`]). Written from Tableau's documentation and its client's fixtures; shares no
//! code with the emulator.

pub mod activity;
pub mod api;
pub mod http;
pub mod jwt;
pub mod multipart;
pub mod retry;
pub mod xml;
pub mod xml_attr;

pub use api::Api;
