//! Rows in, a `.hyper` out: CSV, Arrow IPC streams and Parquet are built into a single-table
//! extract (`"Extract"."Extract"`, Tableau's convention) by Tableau's own engine, `hyperd`,
//! after the last byte arrives and before sign-in. Bulk paths only: `COPY … FROM` the spool
//! file for CSV, `external()` for Parquet and Arrow streams; never row by row.

pub mod locate;
pub mod options;

#[cfg(feature = "extract")]
mod arrow_schema;
#[cfg(feature = "extract")]
mod builder;
#[cfg(feature = "extract")]
mod csv_schema;
#[cfg(feature = "extract")]
mod hyperd;

#[cfg(feature = "extract")]
pub use builder::build;

use serde::Serialize;

use options::{Column, ColumnType};

/// One column as the input holds it and as the extract stores it.
#[derive(Clone, Debug)]
pub struct Source {
    /// The column's name.
    pub name: String,
    /// The SQL type hyperd reads the input's column as.
    pub native: String,
    /// The extract's column type (a cast from `native` when they differ).
    pub target: ColumnType,
}

/// What a build made.
#[derive(Clone, Debug, Serialize)]
pub struct Built {
    /// The input's format.
    pub format: crate::filetype::RowFormat,
    /// Bytes of input.
    pub input_bytes: u64,
    /// Rows in the extract.
    pub rows: u64,
    /// Its columns.
    pub columns: Vec<Column>,
    /// Seconds the build took, hyperd's start and shutdown included.
    pub seconds: f64,
}

/// Without the `extract` feature there is no builder; configs asking for one are refused at
/// init, and a detected row format is refused here.
#[cfg(not(feature = "extract"))]
pub async fn build(
    _exe: &std::path::Path,
    _input: &std::path::Path,
    format: crate::filetype::RowFormat,
    _options: &options::ExtractOptions,
    _out: &std::path::Path,
    _work_dir: &std::path::Path,
) -> crate::error::Result<Built> {
    Err(crate::error::Error::config(format!(
        "the input is {}, and this library was built without the \"extract\" feature that builds rows into a .hyper",
        format.as_str()
    )))
}

/// Whether this build of the library can turn rows into a `.hyper`.
pub const AVAILABLE: bool = cfg!(feature = "extract");
