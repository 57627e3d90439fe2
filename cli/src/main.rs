//! `tabpub`: publish a data source to Tableau from a batch job, or watch the demo.
//!
//! `tabpub publish --config FILE [--input PATH|-]` streams the input through the same library
//! path a C host uses (feed in chunks, then finalize) and prints the result JSON. On failure it
//! prints the message to stderr and exits with the error kind's number (the C ABI's status).

mod demo;
mod usual_tool;

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tableau_publisher::log::{LogFn, LogLevel};
use tableau_publisher::progress::{Phase, Progress, ProgressFn};
use tableau_publisher::{Error, ErrorKind, Publisher};

#[derive(Parser)]
#[command(
    name = "tabpub",
    version,
    about = "Publish data sources to Tableau Server and Tableau Cloud"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Publish a file (or standard input) with the settings in a JSON config file.
    Publish {
        /// The JSON configuration (the same keys a C host gives the library; see the README).
        #[arg(long)]
        config: PathBuf,
        /// The data source file, published in place (no copy); `-` (the default) reads
        /// standard input through the spool.
        #[arg(long, default_value = "-")]
        input: String,
        /// Print progress (phase, MiB sent) and log lines (retries and their reasons,
        /// re-authentications, upload restarts, sign-in, publish) to standard error.
        #[arg(long)]
        progress: bool,
        /// What the input is: hyper, tdsx, tds, tde, or rows to build into a .hyper first
        /// (csv, arrow_stream, parquet). Overrides the config's "file_type". Default: the
        /// config's, else recognised from the content (Parquet, Arrow stream, Tableau files)
        /// or the extension (.csv, .tsv).
        #[arg(long)]
        file_type: Option<String>,
    },
    /// Check server, credentials, site, project and mode now, without data and without
    /// keeping a session (run it when a workflow starts, to fail fast).
    Check {
        /// The JSON configuration.
        #[arg(long)]
        config: PathBuf,
    },
    /// Publish a spool kept by an earlier failed publish, described by its manifest
    /// (the `.spool.json` file named in the error message).
    Resume {
        /// The manifest (`…/tableau-publisher/tableau-publisher-XXXX.spool.json`).
        manifest: PathBuf,
        /// The JSON configuration with the credentials (its settings are used as given).
        #[arg(long)]
        config: PathBuf,
    },
    /// List the spools kept in a spool directory (publishes that failed or were interrupted):
    /// name, project, size, age, state, and the command that publishes each. Deletes nothing.
    Spools {
        /// The config's `spool_dir` (default: the system's temporary directory, as in the config).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Start a local Tableau emulator with short-lived sessions, stream an extract slowly,
    /// and show that the publish succeeds because sign-in happens after the data arrived.
    Demo,
}

/// Bytes per read from the input.
const READ_CHUNK: usize = 1024 * 1024;

fn exit_code(kind: ErrorKind) -> ExitCode {
    ExitCode::from(kind.code() as u8)
}

fn fail(e: &Error) -> ExitCode {
    eprintln!("tabpub: {}", e.message());
    exit_code(e.kind())
}

fn read_config(config: &Path) -> Result<String, Error> {
    std::fs::read_to_string(config).map_err(|e| {
        Error::new(
            ErrorKind::Config,
            format!("cannot read the config file {}: {e}", config.display()),
        )
    })
}

fn check(config: &Path) -> Result<String, Error> {
    let mut publisher = Publisher::new(&read_config(config)?)?;
    let result = publisher.preflight()?;
    Ok(serde_json::to_string_pretty(&result).expect("result serialises"))
}

fn resume(manifest: &Path, config: &Path) -> Result<String, Error> {
    let mut publisher = Publisher::resume(&read_config(config)?, manifest)?;
    let result = publisher.finalize_and_publish()?;
    Ok(serde_json::to_string_pretty(result).expect("result serialises"))
}

fn spools(dir: Option<PathBuf>, json: bool) -> Result<String, Error> {
    let dir = dir.unwrap_or_else(std::env::temp_dir);
    let kept = tableau_publisher::kept::list(&dir)?;
    if json {
        return Ok(serde_json::to_string_pretty(&kept).expect("list serialises"));
    }
    if kept.is_empty() {
        return Ok(format!("no kept spools in {}", dir.display()));
    }
    let mut out = String::new();
    for k in &kept {
        let name = k
            .datasource_name
            .as_deref()
            .unwrap_or("(unknown data source)");
        let project = k.project.as_deref().unwrap_or("?");
        out.push_str(&format!(
            "{name} in {project}: {:.1} MiB, {} old, {}\n  spool: {}\n",
            k.bytes as f64 / 1048576.0,
            humantime::format_duration(std::time::Duration::from_secs(k.age_secs)),
            k.state,
            k.spool.display()
        ));
        if let Some(cmd) = &k.resume {
            out.push_str(&format!("  resume: {cmd}\n"));
        }
    }
    out.push_str(&format!(
        "{} kept spool(s) in {}",
        kept.len(),
        dir.display()
    ));
    Ok(out)
}

/// Progress lines on standard error: each phase once, and the upload every 5%.
fn progress_printer() -> ProgressFn {
    let mut last: Option<(Phase, u64)> = None;
    Box::new(move |p: &Progress| {
        let step = match p.phase {
            Phase::Uploading | Phase::BuildingExtract if p.bytes_total > 0 => {
                p.bytes_sent * 20 / p.bytes_total
            }
            _ => 0,
        };
        if last != Some((p.phase, step)) {
            last = Some((p.phase, step));
            let phase = p.phase.name();
            if p.phase == Phase::Uploading {
                eprintln!(
                    "tabpub: {phase} {:.1}/{:.1} MiB",
                    p.bytes_sent as f64 / 1048576.0,
                    p.bytes_total as f64 / 1048576.0
                );
            } else {
                eprintln!("tabpub: {phase}");
            }
        }
        true
    })
}

/// Log lines on standard error, e.g. `tabpub: warn: …`. The final error is left out: `fail`
/// prints it once, however the publish ends.
fn log_printer() -> LogFn {
    Box::new(|level: LogLevel, message: &str| {
        if level != LogLevel::Error {
            eprintln!("tabpub: {}: {message}", level.name());
        }
    })
}

/// The config with `file_type` set from `--file-type`, or from a `.csv`/`.tsv` input's
/// extension when the config has none (content is recognised by the library).
fn with_file_type(config: String, input: &str, file_type: Option<&str>) -> Result<String, Error> {
    let Ok(serde_json::Value::Object(mut obj)) = serde_json::from_str::<serde_json::Value>(&config)
    else {
        // The library reports what is wrong with it.
        return Ok(config);
    };
    let ext = Path::new(input)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let (file_type, tsv) = match (file_type, ext.as_deref()) {
        (Some(t), _) => (t.to_owned(), false),
        // The config's own file_type wins over the extension.
        (None, _) if obj.contains_key("file_type") => return Ok(config),
        (None, Some("csv")) => ("csv".to_owned(), false),
        (None, Some("tsv")) => ("csv".to_owned(), true),
        _ => return Ok(config),
    };
    obj.insert("file_type".into(), file_type.into());
    if tsv {
        let csv = obj.entry("csv").or_insert_with(|| serde_json::json!({}));
        if let Some(csv) = csv.as_object_mut() {
            csv.entry("delimiter").or_insert_with(|| "\t".into());
        }
    }
    Ok(serde_json::Value::Object(obj).to_string())
}

fn publish(
    config: &Path,
    input: &str,
    progress: bool,
    file_type: Option<&str>,
) -> Result<String, Error> {
    let config_json = with_file_type(read_config(config)?, input, file_type)?;
    let mut publisher = Publisher::new(&config_json)?;
    if progress {
        publisher.set_progress(Some(progress_printer()));
        publisher.set_log(Some(log_printer()));
    }
    // A regular file is published in place; a pipe or stdin is streamed through the spool.
    let path = Path::new(input);
    if input != "-" && path.is_file() {
        publisher.feed_file(path)?;
        let result = publisher.finalize_and_publish()?;
        return Ok(serde_json::to_string_pretty(result).expect("result serialises"));
    }
    let mut reader: Box<dyn Read> = if input == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(input).map_err(|e| {
            Error::new(ErrorKind::Io, format!("cannot open the input {input}: {e}"))
        })?)
    };
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::new(
                    ErrorKind::Io,
                    format!("cannot read the input {input}: {e}"),
                ))
            }
        };
        publisher.feed(&buf[..n])?;
    }
    let result = publisher.finalize_and_publish()?;
    Ok(serde_json::to_string_pretty(result).expect("result serialises"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Publish {
            config,
            input,
            progress,
            file_type,
        } => match publish(&config, &input, progress, file_type.as_deref()) {
            Ok(json) => {
                let mut out = io::stdout().lock();
                let _ = writeln!(out, "{json}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        Command::Check { config } => match check(&config) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        Command::Resume { manifest, config } => match resume(&manifest, &config) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        Command::Spools { dir, json } => match spools(dir, json) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        Command::Demo => match demo::run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        },
    }
}
