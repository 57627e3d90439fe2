//! Recognising what kind of Tableau file the host fed, from its first bytes.

use serde::{Deserialize, Serialize};

/// The file types Tableau's Publish Data Source accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileType {
    /// A Hyper extract (`.hyper`).
    Hyper,
    /// A packaged data source (`.tdsx`, a zip archive).
    Tdsx,
    /// A data source definition (`.tds`, XML).
    Tds,
    /// A legacy Tableau Data Engine extract (`.tde`).
    Tde,
}

/// Row formats that are built into a `.hyper` extract locally before publishing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowFormat {
    /// Comma- (or otherwise) separated values, with the `csv` and `columns` options.
    Csv,
    /// The Arrow IPC stream format (what `pyarrow.ipc.new_stream` writes).
    ArrowStream,
    /// Apache Parquet.
    Parquet,
}

impl RowFormat {
    /// The name in the config's `file_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            RowFormat::Csv => "csv",
            RowFormat::ArrowStream => "arrow_stream",
            RowFormat::Parquet => "parquet",
        }
    }

    /// Recognises Parquet (`PAR1`) and an Arrow IPC stream (the continuation marker
    /// `ff ff ff ff` and a metadata length). CSV has no signature.
    pub fn detect(head: &[u8]) -> Option<RowFormat> {
        if head.starts_with(b"PAR1") {
            return Some(RowFormat::Parquet);
        }
        if head.len() >= 8 && head.starts_with(&[0xff; 4]) && head[4..8] != [0; 4] {
            return Some(RowFormat::ArrowStream);
        }
        None
    }
}

/// What the host feeds: a Tableau file published as it is, or rows built into a `.hyper`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// A Tableau data source file.
    Tableau(FileType),
    /// Rows, built into a single-table `.hyper` before sign-in.
    Rows(RowFormat),
}

impl Input {
    /// Every value the config's `file_type` accepts.
    pub const NAMES: [&'static str; 7] = [
        "hyper",
        "tdsx",
        "tds",
        "tde",
        "csv",
        "arrow_stream",
        "parquet",
    ];

    /// The input named `name` in the config.
    pub fn from_name(name: &str) -> Option<Input> {
        Some(match name {
            "hyper" => Input::Tableau(FileType::Hyper),
            "tdsx" => Input::Tableau(FileType::Tdsx),
            "tds" => Input::Tableau(FileType::Tds),
            "tde" => Input::Tableau(FileType::Tde),
            "csv" => Input::Rows(RowFormat::Csv),
            "arrow_stream" => Input::Rows(RowFormat::ArrowStream),
            "parquet" => Input::Rows(RowFormat::Parquet),
            _ => return None,
        })
    }

    /// The name in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Input::Tableau(t) => t.as_str(),
            Input::Rows(r) => r.as_str(),
        }
    }

    /// Recognises the input from its first bytes (CSV cannot be; see [`RowFormat::detect`]).
    pub fn detect(head: &[u8]) -> Option<Input> {
        FileType::detect(head)
            .map(Input::Tableau)
            .or_else(|| RowFormat::detect(head).map(Input::Rows))
    }

    /// Whether the result can be appended to an existing data source.
    pub fn can_append(self) -> bool {
        match self {
            Input::Tableau(t) => t.can_append(),
            Input::Rows(_) => true,
        }
    }
}

/// Enough leading bytes to recognise every supported type.
pub(crate) const SNIFF_LEN: usize = 16;

impl FileType {
    /// The value of `datasourceType` and the file extension.
    pub fn as_str(self) -> &'static str {
        match self {
            FileType::Hyper => "hyper",
            FileType::Tdsx => "tdsx",
            FileType::Tds => "tds",
            FileType::Tde => "tde",
        }
    }

    /// Whether Tableau can append this type to an existing data source (extracts only).
    pub fn can_append(self) -> bool {
        matches!(self, FileType::Hyper | FileType::Tde)
    }

    /// Recognises the type from the first bytes of a file, or `None`.
    ///
    /// Hyper files start with `Hyper` and 0x08 (Tableau's client matches 12 bytes, but current
    /// files differ at byte 10, so only the stable prefix is used); `.tdsx` is a zip; `.tds` is
    /// XML (optionally after a UTF-8 byte-order mark and whitespace); `.tde` starts `20 02 01 62`.
    pub fn detect(head: &[u8]) -> Option<FileType> {
        if head.starts_with(b"Hyper\x08") {
            return Some(FileType::Hyper);
        }
        if head.starts_with(b"PK\x03\x04") {
            return Some(FileType::Tdsx);
        }
        if head.starts_with(&[0x20, 0x02, 0x01, 0x62]) {
            return Some(FileType::Tde);
        }
        let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
        let start = text.iter().position(|b| !b.is_ascii_whitespace());
        if let Some(start) = start {
            let text = &text[start..];
            if text.starts_with(b"<?xml") || text.starts_with(b"<datasource") {
                return Some(FileType::Tds);
            }
        }
        None
    }

    /// Describes the first bytes for an error message about an unrecognised file.
    pub fn describe_head(head: &[u8]) -> String {
        let hex: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("first bytes: {}", hex.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_real_hyper_fixture() {
        let bytes = include_bytes!("../tests/fixtures/sample.hyper");
        assert_eq!(FileType::detect(&bytes[..SNIFF_LEN]), Some(FileType::Hyper));
    }

    #[test]
    fn detects_each_magic_and_refuses_others() {
        assert_eq!(FileType::detect(b"PK\x03\x04rest"), Some(FileType::Tdsx));
        assert_eq!(
            FileType::detect(b"\xEF\xBB\xBF <?xml version"),
            Some(FileType::Tds)
        );
        assert_eq!(
            FileType::detect(b"<datasource formatted"),
            Some(FileType::Tds)
        );
        assert_eq!(
            FileType::detect(&[0x20, 0x02, 0x01, 0x62, 0]),
            Some(FileType::Tde)
        );
        assert_eq!(FileType::detect(b"id,name\n1,a\n"), None);
        assert_eq!(FileType::detect(b"Hyp"), None);
        assert_eq!(FileType::detect(b""), None);
    }

    #[test]
    fn detects_row_formats_by_their_signatures() {
        assert_eq!(
            Input::detect(b"PAR1\x15\x04"),
            Some(Input::Rows(RowFormat::Parquet))
        );
        assert_eq!(
            Input::detect(&[0xff, 0xff, 0xff, 0xff, 0x78, 0, 0, 0, 0x10]),
            Some(Input::Rows(RowFormat::ArrowStream))
        );
        // The end-of-stream marker alone is not a stream with a schema.
        assert_eq!(Input::detect(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]), None);
        assert_eq!(Input::detect(b"id,name\n1,a\n"), None);
        for name in Input::NAMES {
            assert_eq!(Input::from_name(name).unwrap().as_str(), name);
        }
    }
}
