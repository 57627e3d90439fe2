//! The settings of building rows into a `.hyper`: the CSV dialect, the declared columns, the
//! Hyper file format version and where `hyperd` is. Validated with the rest of the config.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The type of one column of the extract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum ColumnType {
    /// 16-bit integer.
    SmallInt,
    /// 32-bit integer.
    Integer,
    /// 64-bit integer.
    BigInt,
    /// 64-bit floating point.
    Double,
    /// Exact decimal with precision and scale.
    Numeric(u8, u8),
    /// true / false.
    Bool,
    /// A calendar date.
    Date,
    /// A time of day.
    Time,
    /// Date and time without a time zone.
    Timestamp,
    /// Date and time with a time zone (stored in UTC).
    TimestampTz,
    /// Text.
    Text,
}

/// The words `columns[].type` accepts, for messages.
pub const COLUMN_TYPES: &str =
    "bigint, integer, smallint, double, numeric(p,s), bool, date, time, timestamp, timestamptz or text";

impl ColumnType {
    /// The type in Hyper's SQL.
    pub fn sql(self) -> String {
        match self {
            ColumnType::SmallInt => "SMALLINT".into(),
            ColumnType::Integer => "INTEGER".into(),
            ColumnType::BigInt => "BIGINT".into(),
            ColumnType::Double => "DOUBLE PRECISION".into(),
            ColumnType::Numeric(p, s) => format!("NUMERIC({p},{s})"),
            ColumnType::Bool => "BOOLEAN".into(),
            ColumnType::Date => "DATE".into(),
            ColumnType::Time => "TIME".into(),
            ColumnType::Timestamp => "TIMESTAMP".into(),
            ColumnType::TimestampTz => "TIMESTAMP WITH TIME ZONE".into(),
            ColumnType::Text => "TEXT".into(),
        }
    }

    /// The config's name of the type.
    pub fn name(self) -> String {
        match self {
            ColumnType::SmallInt => "smallint".into(),
            ColumnType::Integer => "integer".into(),
            ColumnType::BigInt => "bigint".into(),
            ColumnType::Double => "double".into(),
            ColumnType::Numeric(p, s) => format!("numeric({p},{s})"),
            ColumnType::Bool => "bool".into(),
            ColumnType::Date => "date".into(),
            ColumnType::Time => "time".into(),
            ColumnType::Timestamp => "timestamp".into(),
            ColumnType::TimestampTz => "timestamptz".into(),
            ColumnType::Text => "text".into(),
        }
    }

    /// Reads a type as the config writes it (case and spaces ignored; the SQL spellings
    /// `double precision`, `boolean`, `timestamp with time zone` and `decimal(p,s)` too).
    pub fn parse(text: &str) -> Option<ColumnType> {
        let t: String = text
            .to_ascii_lowercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        Some(match t.as_str() {
            "smallint" => ColumnType::SmallInt,
            "integer" | "int" => ColumnType::Integer,
            "bigint" => ColumnType::BigInt,
            "double" | "double precision" => ColumnType::Double,
            "bool" | "boolean" => ColumnType::Bool,
            "date" => ColumnType::Date,
            "time" => ColumnType::Time,
            "timestamp" => ColumnType::Timestamp,
            "timestamptz" | "timestamp with time zone" => ColumnType::TimestampTz,
            "text" => ColumnType::Text,
            _ => {
                let t = t.replace(' ', "");
                let inner = t
                    .strip_prefix("numeric(")
                    .or_else(|| t.strip_prefix("decimal("))?
                    .strip_suffix(')')?;
                let (p, s) = inner.split_once(',')?;
                let (p, s) = (p.parse::<u8>().ok()?, s.parse::<u8>().ok()?);
                if p == 0 || p > 38 || s > p {
                    return None;
                }
                ColumnType::Numeric(p, s)
            }
        })
    }
}

impl From<ColumnType> for String {
    fn from(t: ColumnType) -> String {
        t.name()
    }
}

impl TryFrom<String> for ColumnType {
    type Error = String;
    fn try_from(s: String) -> Result<ColumnType, String> {
        ColumnType::parse(&s).ok_or_else(|| format!("unknown column type {s:?}"))
    }
}

/// One declared column (`columns` in the config).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// The column's name in the extract.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub column_type: ColumnType,
}

/// The CSV dialect (`csv` in the config).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsvOptions {
    /// Field separator (one ASCII character).
    pub delimiter: u8,
    /// Quote character.
    pub quote: u8,
    /// Escape character inside quotes (the quote itself by default: `""`).
    pub escape: u8,
    /// Whether the first line names the columns.
    pub header: bool,
    /// The text that stands for NULL (an unquoted empty field by default).
    pub null: String,
    /// `utf-8`, `utf-16`, `utf-16-le` or `utf-16-be`.
    pub encoding: String,
}

/// The encodings Hyper's CSV reader takes.
pub const ENCODINGS: &[&str] = &["utf-8", "utf-16", "utf-16-le", "utf-16-be"];

impl Default for CsvOptions {
    fn default() -> CsvOptions {
        CsvOptions {
            delimiter: b',',
            quote: b'"',
            escape: b'"',
            header: true,
            null: String::new(),
            encoding: "utf-8".into(),
        }
    }
}

/// The Hyper file format version written when none is configured: every supported Tableau
/// version reads it.
pub const DEFAULT_HYPER_DATABASE_VERSION: u32 = 2;
/// The versions accepted.
pub const HYPER_DATABASE_VERSIONS: &[u32] = &[0, 1, 2, 3, 4];

/// How rows become a `.hyper`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractOptions {
    /// Declared CSV columns; without them the header names the columns and types are inferred.
    pub columns: Option<Vec<Column>>,
    /// The CSV dialect.
    pub csv: CsvOptions,
    /// The Hyper file format version (`hyper_database_version`).
    pub hyper_database_version: u32,
    /// `hyperd_path` as configured (the search for it happens at init and again at finalize).
    #[serde(skip)]
    pub hyperd_path: Option<PathBuf>,
}

impl Default for ExtractOptions {
    fn default() -> ExtractOptions {
        ExtractOptions {
            columns: None,
            csv: CsvOptions::default(),
            hyper_database_version: DEFAULT_HYPER_DATABASE_VERSION,
            hyperd_path: None,
        }
    }
}

impl ExtractOptions {
    /// The largest NUMERIC precision the configured file format stores.
    pub fn max_numeric_precision(&self) -> u8 {
        if self.hyper_database_version >= 3 {
            38
        } else {
            18
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_types_read_their_spellings_and_refuse_others() {
        assert_eq!(ColumnType::parse("BIGINT"), Some(ColumnType::BigInt));
        assert_eq!(
            ColumnType::parse("double  precision"),
            Some(ColumnType::Double)
        );
        assert_eq!(
            ColumnType::parse("numeric(10, 2)"),
            Some(ColumnType::Numeric(10, 2))
        );
        assert_eq!(
            ColumnType::parse("decimal(18,0)"),
            Some(ColumnType::Numeric(18, 0))
        );
        assert_eq!(
            ColumnType::parse("timestamp with time zone"),
            Some(ColumnType::TimestampTz)
        );
        for bad in [
            "numeric(2,3)",
            "numeric(0,0)",
            "numeric(39,1)",
            "varchar",
            "numeric(a,b)",
            "",
        ] {
            assert_eq!(ColumnType::parse(bad), None, "{bad}");
        }
        for t in [
            ColumnType::Numeric(12, 4),
            ColumnType::TimestampTz,
            ColumnType::Bool,
        ] {
            assert_eq!(ColumnType::parse(&t.name()), Some(t));
        }
    }
}
