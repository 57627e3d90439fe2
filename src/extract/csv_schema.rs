//! The columns of a CSV input: declared in the config, or named by its header and typed from a
//! sample of its first rows (integers, decimals, booleans, ISO dates and timestamps, else
//! text; every column nullable).

use std::io::Read;
use std::path::Path;

use super::options::{Column, ColumnType, CsvOptions, ExtractOptions};
use crate::error::{Error, ErrorKind, Result};

/// Rows read to infer the column types.
pub const SAMPLE_ROWS: usize = 10_000;
/// At most this much of the file is read for the sample.
const SAMPLE_BYTES: u64 = 16 * 1024 * 1024;

/// The columns of the CSV file at `path`.
pub fn columns(path: &Path, options: &ExtractOptions) -> Result<Vec<Column>> {
    let csv = &options.csv;
    let (text, whole) = sample(path, csv)?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(csv.delimiter)
        .quote(csv.quote)
        .escape((csv.escape != csv.quote).then_some(csv.escape))
        .double_quote(csv.escape == csv.quote)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header: Option<Vec<String>> = if csv.header {
        match records.next() {
            Some(Ok(r)) => Some(r.iter().map(str::to_owned).collect()),
            Some(Err(e)) => return Err(not_csv(&e)),
            None => return Err(empty()),
        }
    } else {
        None
    };
    if let Some(declared) = &options.columns {
        if let Some(h) = &header {
            if h.len() != declared.len() {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "the CSV header has {} columns ({}) but \"columns\" declares {}; declare one entry per column of the file",
                        h.len(),
                        h.join(", "),
                        declared.len()
                    ),
                ));
            }
        }
        return Ok(declared.clone());
    }
    let mut kinds: Vec<Guess> = Vec::new();
    let mut rows = 0usize;
    let mut pending: Option<csv::StringRecord> = None;
    // Every row as wide as the header (or the first row): checked here to name the line.
    let mut expected = header.as_ref().map(Vec::len);
    let mut check = |r: &csv::StringRecord| {
        let want = *expected.get_or_insert(r.len());
        match r.len() == want {
            true => Ok(()),
            false => Err(ragged(r, want, csv.header)),
        }
    };
    for record in records {
        let record = match record {
            Ok(r) => r,
            // The sample may end inside a record (or a UTF-16 character) when it was cut.
            Err(_) if !whole => break,
            Err(e) => return Err(not_csv(&e)),
        };
        // The last record of a cut sample may be cut too: look at each one only once the next has come.
        if let Some(prev) = pending.replace(record) {
            check(&prev)?;
            observe(&mut kinds, &prev, &csv.null);
            rows += 1;
            if rows >= SAMPLE_ROWS {
                pending = None;
                break;
            }
        }
    }
    if let Some(last) = pending.filter(|_| whole) {
        check(&last)?;
        observe(&mut kinds, &last, &csv.null);
    }
    let width = header
        .as_ref()
        .map_or(kinds.len(), Vec::len)
        .max(kinds.len());
    if width == 0 {
        return Err(empty());
    }
    let names = unique_names(header.unwrap_or_default(), width);
    Ok(names
        .into_iter()
        .enumerate()
        .map(|(i, name)| Column {
            name,
            column_type: kinds.get(i).map_or(ColumnType::Text, |g| g.column_type()),
        })
        .collect())
}

/// A row whose field count differs from the header's (or the first row's).
fn ragged(record: &csv::StringRecord, expected: usize, header: bool) -> Error {
    let line = record.position().map_or(0, csv::Position::line);
    Error::new(
        ErrorKind::InvalidArgument,
        format!(
            "the CSV input has {} fields on line {line} but {expected} {}; every row needs the same number of fields (quote fields that contain the delimiter, or set \"csv.delimiter\")",
            record.len(),
            if header { "in its header" } else { "on its first row" },
        ),
    )
}

fn empty() -> Error {
    Error::new(
        ErrorKind::InvalidArgument,
        "the CSV input is empty: it has no header and no rows; feed the data (or declare \"columns\" and \"csv.header\": false)",
    )
}

fn not_csv(e: &csv::Error) -> Error {
    Error::new(
        ErrorKind::InvalidArgument,
        format!("the CSV input cannot be read: {e}; check the \"csv\" options (delimiter, quote, encoding)"),
    )
}

/// The first part of the file as UTF-8 text, and whether it is the whole file.
fn sample(path: &Path, csv: &CsvOptions) -> Result<(String, bool)> {
    let mut bytes = Vec::new();
    let file = std::fs::File::open(path)
        .map_err(|e| Error::io(&format!("cannot read {}", path.display()), &e))?;
    file.take(SAMPLE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(&format!("cannot read {}", path.display()), &e))?;
    let whole = bytes.len() as u64 <= SAMPLE_BYTES;
    bytes.truncate(SAMPLE_BYTES as usize);
    let text = match csv.encoding.as_str() {
        "utf-16" | "utf-16-le" | "utf-16-be" => {
            let mut le = csv.encoding != "utf-16-be";
            let mut body = &bytes[..];
            if csv.encoding == "utf-16" {
                match body {
                    [0xff, 0xfe, rest @ ..] => body = rest,
                    [0xfe, 0xff, rest @ ..] => {
                        body = rest;
                        le = false;
                    }
                    _ => {}
                }
            }
            let units = body.chunks_exact(2).map(|c| {
                if le {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            });
            char::decode_utf16(units)
                .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect()
        }
        _ => {
            let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
            match std::str::from_utf8(body) {
                Ok(s) => s.to_owned(),
                // A cut sample may end inside a character; anything else is reported by Hyper
                // with its line, so the sample takes the valid part.
                Err(e) => String::from_utf8_lossy(&body[..e.valid_up_to()]).into_owned(),
            }
        }
    };
    Ok((text, whole))
}

/// Header names made usable: blank ones become `F1`, `F2`, … (by position, as Tableau's text
/// connector names them), repeated ones get `_2`, `_3`, …; missing ones are added.
fn unique_names(mut names: Vec<String>, width: usize) -> Vec<String> {
    names.resize(width, String::new());
    let mut seen = std::collections::HashSet::new();
    names
        .into_iter()
        .enumerate()
        .map(|(i, n)| {
            let base = match n.trim() {
                "" => format!("F{}", i + 1),
                t => t.to_owned(),
            };
            let mut name = base.clone();
            let mut k = 2;
            while !seen.insert(name.to_lowercase()) {
                name = format!("{base}_{k}");
                k += 1;
            }
            name
        })
        .collect()
}

/// What every non-null value seen so far of one column could be.
#[derive(Clone, Copy)]
struct Guess {
    int: bool,
    float: bool,
    bool: bool,
    date: bool,
    timestamp: bool,
    timestamptz: bool,
    seen: bool,
}

impl Guess {
    const ANY: Guess = Guess {
        int: true,
        float: true,
        bool: true,
        date: true,
        timestamp: true,
        timestamptz: true,
        seen: false,
    };

    fn column_type(self) -> ColumnType {
        match self {
            g if !g.seen => ColumnType::Text,
            g if g.bool => ColumnType::Bool,
            g if g.int => ColumnType::BigInt,
            g if g.float => ColumnType::Double,
            g if g.date => ColumnType::Date,
            g if g.timestamp => ColumnType::Timestamp,
            g if g.timestamptz => ColumnType::TimestampTz,
            _ => ColumnType::Text,
        }
    }

    fn see(&mut self, v: &str) {
        self.seen = true;
        if self.bool {
            self.bool = v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false");
        }
        if self.int {
            self.int = v.parse::<i64>().is_ok();
        }
        if self.float {
            self.float = is_decimal(v);
        }
        let (date, time) = match v.split_once(['T', ' ']) {
            Some((d, t)) => (d, Some(t)),
            None => (v, None),
        };
        let date_ok = is_date(date);
        if self.date {
            self.date = date_ok && time.is_none();
        }
        if self.timestamp || self.timestamptz {
            let (plain, zoned) = match time {
                Some(t) if date_ok => time_kind(t),
                // A date alone is also a timestamp at midnight.
                None if date_ok => (true, false),
                _ => (false, false),
            };
            self.timestamp &= plain;
            self.timestamptz &= zoned || (plain && time.is_none());
        }
    }
}

fn observe(kinds: &mut Vec<Guess>, record: &csv::StringRecord, null: &str) {
    if kinds.len() < record.len() {
        kinds.resize(record.len(), Guess::ANY);
    }
    for (i, field) in record.iter().enumerate() {
        if field != null {
            kinds[i].see(field);
        }
    }
}

/// `-12`, `3.25`, `.5`, `1e-3`: a number Hyper's DOUBLE reads (no `inf` or `nan` text).
fn is_decimal(v: &str) -> bool {
    let digits = v.trim_start_matches(['-', '+']);
    digits.bytes().any(|b| b.is_ascii_digit())
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && v.parse::<f64>().is_ok_and(f64::is_finite)
}

/// `YYYY-MM-DD` with a real month and day.
fn is_date(v: &str) -> bool {
    let b = v.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| v.get(r).and_then(|s| s.parse::<u32>().ok());
    match (num(0..4), num(5..7), num(8..10)) {
        (Some(y), Some(m), Some(d)) => {
            let days = match m {
                1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
                4 | 6 | 9 | 11 => 30,
                2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
                2 => 28,
                _ => return false,
            };
            (1..=days).contains(&d)
        }
        _ => false,
    }
}

/// Whether `HH:MM[:SS[.ffffff]]` follows (plain), or the same with `Z` or `±HH[:MM]` (zoned).
fn time_kind(t: &str) -> (bool, bool) {
    let (clock, zoned) = match t.find(['Z', 'z', '+', '-']) {
        Some(i) => {
            let zone = &t[i..];
            let zone_ok = zone.eq_ignore_ascii_case("z") || {
                let z = &zone[1..];
                let z = z.replace(':', "");
                (z.len() == 2 || z.len() == 4) && z.bytes().all(|b| b.is_ascii_digit())
            };
            if !zone_ok {
                return (false, false);
            }
            (&t[..i], true)
        }
        None => (t, false),
    };
    let (hms, frac) = match clock.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (clock, None),
    };
    let parts: Vec<&str> = hms.split(':').collect();
    let two = |s: &str, max: u32| s.len() == 2 && s.parse::<u32>().is_ok_and(|n| n <= max);
    let ok = matches!(parts.len(), 2 | 3)
        && two(parts[0], 23)
        && two(parts[1], 59)
        && parts.get(2).is_none_or(|s| two(s, 59))
        && frac.is_none_or(|f| (1..=6).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()))
        && (frac.is_none() || parts.len() == 3);
    (ok && !zoned, ok && zoned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infer(text: &str) -> Vec<(String, ColumnType)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(&path, text).unwrap();
        columns(&path, &ExtractOptions::default())
            .unwrap()
            .into_iter()
            .map(|c| (c.name, c.column_type))
            .collect()
    }

    #[test]
    fn infers_each_type_from_the_sample() {
        let cols = infer(
            "id,amount,ok,day,at,at_tz,name,empty\n\
             1,2.50,true,2024-02-29,2024-01-02 03:04:05,2024-01-02T03:04:05Z,\"a, b\",\n\
             -7,,FALSE,1999-12-31,2024-01-02T03:04:05.123456,2024-01-02 03:04:05+01:00,\"x\"\"y\",\n\
             ,1e3,,,,,,\n",
        );
        use ColumnType::*;
        let want = [
            ("id", BigInt),
            ("amount", Double),
            ("ok", Bool),
            ("day", Date),
            ("at", Timestamp),
            ("at_tz", TimestampTz),
            ("name", Text),
            ("empty", Text),
        ];
        let want: Vec<(String, ColumnType)> =
            want.iter().map(|(n, t)| (n.to_string(), *t)).collect();
        assert_eq!(cols, want);
    }

    #[test]
    fn text_wins_over_a_single_odd_value_and_names_are_made_unique() {
        let cols = infer("a,a,,d\n1,2023-02-29,x,1.5\nz,2023-01-01,y,nan\n");
        assert_eq!(
            cols,
            vec![
                ("a".to_string(), ColumnType::Text),
                ("a_2".to_string(), ColumnType::Text),
                ("F3".to_string(), ColumnType::Text),
                ("d".to_string(), ColumnType::Text),
            ]
        );
    }

    #[test]
    fn a_ragged_row_is_refused_naming_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(&path, "a,b\n1,2\n\"x\ny\",3\n4,5,6\n7,8\n").unwrap();
        let err = columns(&path, &ExtractOptions::default()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(
            err.message()
                .contains("3 fields on line 5 but 2 in its header"),
            "{err}"
        );
    }

    #[test]
    fn an_empty_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(&path, "").unwrap();
        let e = columns(&path, &ExtractOptions::default()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    }

    #[test]
    fn declared_columns_must_match_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(&path, "a,b\n1,2\n").unwrap();
        let options = ExtractOptions {
            columns: Some(vec![Column {
                name: "a".into(),
                column_type: ColumnType::Text,
            }]),
            ..ExtractOptions::default()
        };
        let e = columns(&path, &options).unwrap_err();
        assert!(e.message().contains("declares 1"), "{}", e.message());
    }
}
