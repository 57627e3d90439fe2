//! tableau-publisher: publish data sources to Tableau Server and Tableau Cloud from ETL hosts.
//!
//! The host feeds bytes as they are produced ([`Publisher::feed`]); only when the data is complete
//! does [`Publisher::finalize_and_publish`] sign in, upload and publish, so a token cannot expire
//! while an upstream job runs for hours. The C ABI in [`ffi`] is a thin layer over [`Publisher`].
//!
//! The Rust API is what this page lists: [`Publisher`], its results and errors, [`progress`]
//! reports, [`log`] lines, the [`Canceller`] and the [`kept`] spools. Everything else is internal.

mod api_version;
mod background_hash;
mod cancel;
pub(crate) mod client;
mod config;
mod error;
pub(crate) mod extract;
pub mod ffi;
mod filetype;
#[doc(hidden)]
pub mod fuzzing;
mod hex;
pub mod kept;
pub mod log;
mod manifest;
mod native_path;
mod private_dir;
mod process;
pub mod progress;
mod publish;
mod publisher;
mod shell_word;
mod sigpipe;
mod spool;

pub use cancel::Canceller;
pub use error::{Error, ErrorKind};
pub use publish::{PreflightResult, PublishResult};
pub use publisher::Publisher;
