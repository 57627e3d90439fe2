//! The columns of an Arrow IPC stream, from its schema message: each Arrow type as hyperd's
//! Arrow reader takes it, and the Hyper column it becomes (the Alteryx tool's mapping).

use std::io::Read;
use std::path::Path;

use arrow_schema::{DataType, TimeUnit};

use super::options::{ColumnType, ExtractOptions};
use super::Source;
use crate::error::{Error, ErrorKind, Result};

/// The most metadata a schema message may have.
const MAX_SCHEMA_BYTES: usize = 16 * 1024 * 1024;

/// Reads the schema at the start of the stream at `path` and maps every field, refusing (all
/// at once, each with its column and type) those hyperd cannot read.
pub fn columns(path: &Path, options: &ExtractOptions) -> Result<Vec<Source>> {
    let schema = read_schema(path)?;
    let mut out = Vec::new();
    let mut refused = Vec::new();
    for field in schema.fields() {
        match map(field.data_type(), options) {
            Ok((native, target)) => out.push(Source {
                name: field.name().clone(),
                native,
                target,
            }),
            Err(why) => refused.push(format!(
                "column \"{}\" ({}): {why}",
                field.name(),
                field.data_type()
            )),
        }
    }
    if !refused.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "the Arrow stream has columns that cannot go into a Tableau extract: {}",
                refused.join("; ")
            ),
        ));
    }
    if out.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "the Arrow stream's schema has no columns",
        ));
    }
    Ok(out)
}

fn truncated(what: &str) -> Error {
    Error::new(
        ErrorKind::InvalidArgument,
        format!("the input is not a complete Arrow IPC stream ({what}); write it with an Arrow stream writer (e.g. pyarrow.ipc.new_stream) and feed every byte"),
    )
}

fn read_schema(path: &Path) -> Result<arrow_schema::Schema> {
    let mut file = std::fs::File::open(path)
        .map_err(|e| Error::io(&format!("cannot read {}", path.display()), &e))?;
    let mut prefix = [0u8; 8];
    file.read_exact(&mut prefix)
        .map_err(|_| truncated("it ends before its schema"))?;
    let len = i32::from_le_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
    if prefix[..4] != [0xff; 4] || len <= 0 || len as usize > MAX_SCHEMA_BYTES {
        return Err(truncated("it does not start with a schema message"));
    }
    let mut buf = prefix.to_vec();
    buf.resize(8 + len as usize, 0);
    file.read_exact(&mut buf[8..])
        .map_err(|_| truncated("it ends inside its schema"))?;
    // The reader panics on some malformed schemas; a malformed input is the host's error.
    let parsed = std::panic::catch_unwind(|| arrow_ipc::convert::try_schema_from_ipc_buffer(&buf));
    match parsed {
        Ok(Ok(schema)) => Ok(schema),
        Ok(Err(e)) => Err(truncated(&format!("its schema cannot be read: {e}"))),
        Err(_) => Err(truncated("its schema is malformed")),
    }
}

/// How hyperd reads one Arrow type (its `DESCRIPTOR` type), and the extract column it becomes.
fn map(
    t: &DataType,
    options: &ExtractOptions,
) -> std::result::Result<(String, ColumnType), String> {
    use ColumnType::*;
    let same = |c: ColumnType| Ok((c.sql(), c));
    match t {
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => same(SmallInt),
        DataType::Int32 | DataType::UInt16 => same(Integer),
        DataType::Int64 | DataType::UInt32 => same(BigInt),
        DataType::Float32 => Ok(("REAL".into(), Double)),
        DataType::Float64 => same(Double),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => {
            let max = options.max_numeric_precision();
            if *s < 0 || *p > max {
                Err(format!(
                    "a Tableau extract holds decimals of at most {max} digits{}; cast it to a narrower decimal or to float64",
                    if max == 18 { " (38 with \"hyper_database_version\": 3, read by Tableau Server 2023.1 and later and Tableau Cloud)" } else { "" }
                ))
            } else {
                same(Numeric(*p, *s as u8))
            }
        }
        DataType::Utf8 => same(Text),
        DataType::Boolean => same(Bool),
        DataType::Date32 | DataType::Date64 => same(Date),
        DataType::Time32(_) | DataType::Time64(TimeUnit::Microsecond) => same(Time),
        DataType::Timestamp(TimeUnit::Nanosecond, _) | DataType::Time64(TimeUnit::Nanosecond) => Err(
            "hyperd's Arrow reader takes seconds, milliseconds and microseconds, not nanoseconds; cast it to microseconds (pyarrow: .cast(pa.timestamp(\"us\", tz)); pandas writes nanoseconds by default)".into(),
        ),
        DataType::Timestamp(_, None) => same(Timestamp),
        DataType::Timestamp(_, Some(_)) => same(TimestampTz),
        DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(_, _) => Err(
            "hyperd's Arrow reader takes plain strings (utf8) only; cast it to pa.string() (Polars: compat_level=0, or .cast(pl.String) before to_arrow)".into(),
        ),
        DataType::Null => Err("a column of only nulls has no type; cast it to the type it stands for (pa.string(), pa.int64(), …)".into()),
        DataType::UInt64 => Err("a Tableau extract has no unsigned 64-bit integer; cast it to int64 (or decimal128(20, 0))".into()),
        _ => Err("a Tableau extract has no such column type; leave the column out or cast it to a string, number, date or timestamp".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_like_the_alteryx_tool_and_refuses_the_rest() {
        let o = ExtractOptions::default();
        assert_eq!(map(&DataType::UInt8, &o).unwrap().1, ColumnType::SmallInt);
        assert_eq!(
            map(&DataType::Float32, &o).unwrap(),
            ("REAL".into(), ColumnType::Double)
        );
        assert_eq!(
            map(&DataType::Decimal128(18, 2), &o).unwrap().1,
            ColumnType::Numeric(18, 2)
        );
        assert!(map(&DataType::Decimal128(30, 2), &o).is_err());
        let v3 = ExtractOptions {
            hyper_database_version: 3,
            ..ExtractOptions::default()
        };
        assert_eq!(
            map(&DataType::Decimal128(30, 2), &v3).unwrap().1,
            ColumnType::Numeric(30, 2)
        );
        assert_eq!(
            map(
                &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                &o
            )
            .unwrap()
            .1,
            ColumnType::TimestampTz
        );
        for bad in [
            DataType::UInt64,
            DataType::LargeUtf8,
            DataType::Binary,
            DataType::Null,
            DataType::Timestamp(TimeUnit::Nanosecond, None),
        ] {
            assert!(map(&bad, &o).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_stream_cut_inside_its_schema_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.arrows");
        std::fs::write(&path, [0xff, 0xff, 0xff, 0xff, 0x00, 0x01, 0, 0, 1, 2, 3]).unwrap();
        let e = columns(&path, &ExtractOptions::default()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(
            e.message().contains("ends inside its schema"),
            "{}",
            e.message()
        );
        std::fs::write(
            &path,
            [
                0xff, 0xff, 0xff, 0xff, 0x10, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
                14, 15, 16,
            ],
        )
        .unwrap();
        let e = columns(&path, &ExtractOptions::default()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    }
}
