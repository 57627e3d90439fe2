//! tableau-publisher: publish data sources to Tableau Server and Tableau Cloud from ETL hosts.
//!
//! The host feeds bytes as they are produced ([`Publisher::feed`]); only when the data is complete
//! does [`Publisher::finalize_and_publish`] sign in, upload and publish, so a token cannot expire
//! while an upstream job runs for hours. The C ABI in [`ffi`] is a thin layer over [`Publisher`].

pub mod background_hash;
pub mod client;
pub mod config;
pub mod error;
pub mod ffi;
pub mod filetype;
pub mod manifest;
pub mod progress;
pub mod publish;
pub mod publisher;
pub mod spool;

pub use config::Config;
pub use error::{Error, ErrorKind};
pub use publish::PublishResult;
pub use publisher::Publisher;
