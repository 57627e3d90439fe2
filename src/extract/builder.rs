//! One extract build: start hyperd, create the file, declare the table, load the input in
//! one bulk statement, detach, shut hyperd down, and only then name the file as finished.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tokio_postgres::{Client, SimpleQueryMessage};

use super::hyperd::Hyperd;
use super::options::{Column, ColumnType, ExtractOptions};
use super::{arrow_schema, csv_schema, Built, Source};
use crate::error::{Error, ErrorKind, Result};
use crate::filetype::RowFormat;

/// The extract's table, as Tableau names it.
const TABLE: &str = "\"extract\".\"Extract\".\"Extract\"";

/// Builds the rows of `input` (in `format`) into a new `.hyper` at `out`, using hyperd at
/// `exe`, with its working files under `work_dir`. `out` appears only once it is complete.
pub async fn build(
    exe: &Path,
    input: &Path,
    format: RowFormat,
    options: &ExtractOptions,
    out: &Path,
    work_dir: &Path,
) -> Result<Built> {
    let started = Instant::now();
    // Known before hyperd starts for CSV and Arrow, so a bad header fails fast.
    let early = match format {
        RowFormat::Csv => Some(csv_sources(input, options)?),
        RowFormat::ArrowStream => Some(arrow_schema::columns(input, options)?),
        RowFormat::Parquet => None,
    };
    let building = partial_path(out);
    let _ = std::fs::remove_file(&building);
    let hyperd = Hyperd::start(exe, work_dir, options.hyper_database_version).await?;
    let client = hyperd.connect().await?;
    let loaded = load(&client, input, format, options, early, &building).await;
    drop(client);
    let stopped = hyperd.stop().await;
    let (rows, sources) = match (loaded, stopped) {
        (Ok(done), Ok(())) => done,
        (Err(e), _) | (Ok(_), Err(e)) => {
            let _ = std::fs::remove_file(&building);
            return Err(e);
        }
    };
    std::fs::rename(&building, out).map_err(|e| {
        Error::io(
            &format!("cannot name the built extract {}", out.display()),
            &e,
        )
    })?;
    Ok(Built {
        format,
        input_bytes: std::fs::metadata(input).map(|m| m.len()).unwrap_or(0),
        rows,
        columns: sources
            .into_iter()
            .map(|s| Column {
                name: s.name,
                column_type: s.target,
            })
            .collect(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Where the extract is written while it is built.
fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".building");
    PathBuf::from(name)
}

async fn load(
    client: &Client,
    input: &Path,
    format: RowFormat,
    options: &ExtractOptions,
    early: Option<Vec<Source>>,
    building: &Path,
) -> Result<(u64, Vec<Source>)> {
    let setup = |e| internal("cannot create the extract", e);
    run(
        client,
        &format!("CREATE DATABASE {}", ident(&building.to_string_lossy())),
    )
    .await
    .map_err(setup)?;
    run(
        client,
        &format!(
            "ATTACH DATABASE {} AS \"extract\"",
            ident(&building.to_string_lossy())
        ),
    )
    .await
    .map_err(setup)?;
    run(client, "CREATE SCHEMA \"extract\".\"Extract\"")
        .await
        .map_err(setup)?;
    let file = literal(&input.to_string_lossy());
    let sources = match early {
        Some(s) => s,
        None => parquet_sources(client, &file, options).await?,
    };
    let columns: Vec<String> = sources
        .iter()
        .map(|s| format!("{} {}", ident(&s.name), s.target.sql()))
        .collect();
    run(
        client,
        &format!("CREATE TABLE {TABLE} ({})", columns.join(", ")),
    )
    .await
    .map_err(|e| refused(format, "its columns cannot be declared", e))?;
    let statement = match format {
        RowFormat::Csv => {
            let c = &options.csv;
            format!(
                "COPY {TABLE} FROM {file} WITH (FORMAT csv, DELIMITER {}, QUOTE {}, ESCAPE {}, HEADER {}, NULL {}, ENCODING {})",
                literal(&(c.delimiter as char).to_string()),
                literal(&(c.quote as char).to_string()),
                literal(&(c.escape as char).to_string()),
                c.header,
                literal(&c.null),
                literal(&c.encoding)
            )
        }
        RowFormat::Parquet => format!(
            "INSERT INTO {TABLE} SELECT {} FROM external({file}, FORMAT => 'parquet')",
            select_list(&sources)
        ),
        RowFormat::ArrowStream => {
            let descriptor: Vec<String> = sources
                .iter()
                .map(|s| format!("{} {}", ident(&s.name), s.native))
                .collect();
            format!(
                "INSERT INTO {TABLE} SELECT {} FROM external({file}, COLUMNS => DESCRIPTOR({}), FORMAT => 'arrowstream')",
                select_list(&sources),
                descriptor.join(", ")
            )
        }
    };
    let rows = run(client, &statement)
        .await
        .map_err(|e| refused(format, "its rows cannot be loaded", e))
        .map_err(|e| name_column(e, &sources))?;
    run(client, "DETACH DATABASE \"extract\"")
        .await
        .map_err(setup)?;
    Ok((rows, sources))
}

fn select_list(sources: &[Source]) -> String {
    sources
        .iter()
        .map(|s| {
            let col = ident(&s.name);
            if s.native.eq_ignore_ascii_case(&s.target.sql()) {
                col
            } else {
                format!("CAST({col} AS {}) AS {col}", s.target.sql())
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn csv_sources(input: &Path, options: &ExtractOptions) -> Result<Vec<Source>> {
    Ok(csv_schema::columns(input, options)?
        .into_iter()
        .map(|c| Source {
            name: c.name,
            native: c.column_type.sql(),
            target: c.column_type,
        })
        .collect())
}

/// The Parquet file's columns as hyperd infers them, mapped to extract columns.
async fn parquet_sources(
    client: &Client,
    file: &str,
    options: &ExtractOptions,
) -> Result<Vec<Source>> {
    let probe = "tp_parquet_columns";
    run(client, &format!("CREATE TEMPORARY TABLE {probe} AS SELECT * FROM external({file}, FORMAT => 'parquet') LIMIT 0"))
        .await
        .map_err(|e| refused(RowFormat::Parquet, "its schema cannot be read", e))?;
    let rows = client
        .simple_query(&format!(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON a.attrelid = c.oid WHERE c.relname = '{probe}' AND a.attnum > 0 ORDER BY a.attnum"
        ))
        .await
        .map_err(|e| internal("cannot read the Parquet file's columns", e))?;
    let mut sources = Vec::new();
    let mut problems = Vec::new();
    for row in rows {
        let SimpleQueryMessage::Row(row) = row else {
            continue;
        };
        let (Some(name), Some(native)) = (row.get(0), row.get(1)) else {
            continue;
        };
        match parquet_target(native, options) {
            Ok(target) => sources.push(Source {
                name: name.to_owned(),
                native: native.to_owned(),
                target,
            }),
            Err(why) => problems.push(format!("column \"{name}\" ({native}): {why}")),
        }
    }
    if !problems.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "the Parquet input has columns that cannot go into a Tableau extract: {}",
                problems.join("; ")
            ),
        ));
    }
    if sources.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "the Parquet input has no columns",
        ));
    }
    Ok(sources)
}

fn parquet_target(
    native: &str,
    options: &ExtractOptions,
) -> std::result::Result<ColumnType, String> {
    use ColumnType::*;
    let t = native.to_ascii_lowercase();
    Ok(match t.as_str() {
        "real" => Double,
        "timestamptz" => TimestampTz,
        "character varying" | "text" => Text,
        _ if t.starts_with("character") || t.starts_with("varchar") || t.starts_with("char") => Text,
        _ => match ColumnType::parse(&t) {
            Some(Numeric(p, _)) if p > options.max_numeric_precision() => {
                return Err(format!(
                    "a Tableau extract holds decimals of at most {} digits; write it as a narrower decimal or a double, or set \"hyper_database_version\": 3 (Tableau Server 2023.1 and later, Tableau Cloud) for up to 38",
                    options.max_numeric_precision()
                ))
            }
            Some(c) => c,
            None => {
                return Err(
                    "a Tableau extract has no such column type; leave the column out or write it as a string, number, date or timestamp".into(),
                )
            }
        },
    })
}

/// Runs one statement; the rows it affected (0 when it says none).
async fn run(client: &Client, sql: &str) -> std::result::Result<u64, tokio_postgres::Error> {
    let messages = client.simple_query(sql).await?;
    Ok(messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => Some(*n),
            _ => None,
        })
        .unwrap_or(0))
}

/// Hyper's words for what went wrong: message, detail and hint.
fn hyper_says(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = db.message().trim().to_owned();
            if let Some(d) = db.detail().map(str::trim).filter(|d| !d.is_empty()) {
                s.push_str(&format!(" ({})", d.replace('\n', " ")));
            }
            if let Some(h) = db.hint().map(str::trim).filter(|h| !h.is_empty()) {
                s.push_str(&format!("; {h}"));
            }
            s
        }
        None => e.to_string(),
    }
}

/// The input was refused by Hyper: the host's data is at fault (line, column and value as
/// Hyper names them).
fn refused(format: RowFormat, what: &str, e: tokio_postgres::Error) -> Error {
    // A statement Hyper cannot parse is this library's fault, not the data's.
    if e.code()
        .is_some_and(|c| c.code().starts_with("42") && c.code() != "42804")
    {
        return Error::new(
            ErrorKind::Internal,
            format!(
                "building the extract failed ({what}): hyperd says: {}",
                hyper_says(&e)
            ),
        );
    }
    let fix = match format {
        RowFormat::Csv => "; fix that line, or declare the column's type in \"columns\" (text takes anything), or check the \"csv\" options",
        RowFormat::ArrowStream => "; feed the whole stream as the writer produced it",
        RowFormat::Parquet => "; feed the whole file as the writer produced it",
    };
    Error::new(
        ErrorKind::InvalidArgument,
        format!(
            "the {} input is not valid: {what}: {}{fix}. Nothing was sent to Tableau",
            format.as_str(),
            hyper_says(&e)
        ),
    )
}

/// Hyper names a CSV column by position ("column:3"); add its name.
fn name_column(e: Error, sources: &[Source]) -> Error {
    let message = e.message();
    let name = message
        .split_once("column:")
        .and_then(|(_, rest)| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<usize>().ok()
        })
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| sources.get(i));
    match name {
        Some(s) => Error::new(
            e.kind(),
            message.replacen(
                "column:",
                &format!("column \"{}\" of type {}, column:", s.name, s.target.sql()),
                1,
            ),
        ),
        None => e,
    }
}

fn internal(what: &str, e: tokio_postgres::Error) -> Error {
    Error::new(
        ErrorKind::Io,
        format!("{what}: hyperd says: {}", hyper_says(&e)),
    )
}

/// A quoted SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A quoted SQL string.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
