//! `tableau-emulator`: run the emulator as a process. Prints its URL as the first stdout line.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use tableau_emulator::{Config, Emulator, Seed};

/// A local Tableau Server REST API emulator with fault injection.
#[derive(Parser, Debug)]
#[command(name = "tableau-emulator", version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// JSON seed file (sites, users, PATs, projects).
    #[arg(long)]
    seed: Option<PathBuf>,
    /// Session lifetime in seconds (idle timeout).
    #[arg(long)]
    token_ttl_secs: Option<u64>,
    /// Count the session lifetime from sign-in instead of from the last request.
    #[arg(long)]
    absolute_token_ttl: bool,
    /// restApiVersion to advertise; higher URL versions get 404003.
    #[arg(long, default_value = "3.25")]
    api_version: String,
    /// Do not read published .hyper files with hyperd (by default their tables, columns and
    /// row counts are in /_emulator/datasources when hyperd is found).
    #[arg(long)]
    no_read_extracts: bool,
    /// hyperd to read extracts with (default HYPERD_PATH, else python3's tableauhyperapi).
    #[arg(long)]
    hyperd_path: Option<PathBuf>,
    /// Keep uploads and published files here (default: a temporary directory).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Async publish jobs complete after this many milliseconds.
    #[arg(long)]
    job_duration_ms: Option<u64>,
    /// Cap on pageSize.
    #[arg(long)]
    max_page_size: Option<u32>,
    /// Largest file part of a single-request publish, in bytes.
    #[arg(long)]
    max_single_request_bytes: Option<u64>,
    /// Largest file part of an append, in bytes.
    #[arg(long)]
    max_chunk_bytes: Option<u64>,
    /// Error code an expired token gets (401000 or 401002).
    #[arg(long)]
    expired_token_code: Option<String>,
    /// HTTP status of an asJob publish (200, 201 or 202).
    #[arg(long)]
    async_publish_status: Option<u16>,
    /// Upload sessions only work with the auth session that created them.
    #[arg(long)]
    bind_upload_sessions_to_auth: bool,
    /// Count uploads without hashing or storing them (benchmarks; data sources report an empty sha256).
    #[arg(long)]
    discard_data: bool,
    /// Accept the entity &apos; in sign-in and publish payloads (by default they get 400, as
    /// Tableau's publish endpoint is reported to answer).
    #[arg(long)]
    accept_apos_entity: bool,
    /// End a session when its token is used on a second TCP connection (as one maintainer
    /// statement says Tableau does; by default a token works on many connections at once).
    #[arg(long)]
    end_session_on_second_connection: bool,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Exit when standard input reaches end of file.
    #[arg(long)]
    exit_on_stdin_eof: bool,
    /// Do not log requests to stderr.
    #[arg(long)]
    quiet: bool,
}

fn main() {
    let args = Args::parse();
    let mut cfg = Config {
        listen: args.listen,
        api_version: args.api_version.clone(),
        ..Config::default()
    };
    if let Some(p) = &args.seed {
        cfg.seed = match Seed::from_file(p) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("tableau-emulator: cannot read seed {}: {e}", p.display());
                std::process::exit(2);
            }
        };
    }
    if let Some(s) = args.token_ttl_secs {
        cfg.token_ttl = Duration::from_secs(s);
    }
    cfg.absolute_token_ttl = args.absolute_token_ttl;
    cfg.data_dir = args.data_dir.clone();
    cfg.read_extracts = !args.no_read_extracts;
    cfg.hyperd_path = args.hyperd_path.clone();
    if let Some(ms) = args.job_duration_ms {
        cfg.job_duration = Duration::from_millis(ms);
    }
    if let Some(n) = args.max_page_size {
        cfg.max_page_size = n.max(1);
    }
    if let Some(n) = args.max_single_request_bytes {
        cfg.max_single_request_bytes = n;
    }
    if let Some(n) = args.max_chunk_bytes {
        cfg.max_chunk_bytes = n;
    }
    if let Some(c) = &args.expired_token_code {
        cfg.expired_token_code = c.clone();
    }
    if let Some(s) = args.async_publish_status {
        cfg.async_publish_status = s;
    }
    cfg.bind_upload_sessions_to_auth = args.bind_upload_sessions_to_auth;
    cfg.discard_data = args.discard_data;
    cfg.accept_apos_entity = args.accept_apos_entity;
    cfg.end_session_on_second_connection = args.end_session_on_second_connection;
    if let (Some(cert_chain), Some(key)) = (&args.tls_cert, &args.tls_key) {
        cfg.tls = Some(tableau_emulator::TlsFiles {
            cert_chain: cert_chain.clone(),
            key: key.clone(),
        });
    }

    let emu = match Emulator::start(cfg) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("tableau-emulator: cannot start: {e}");
            std::process::exit(1);
        }
    };
    emu.set_log_to_stderr(!args.quiet);
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", emu.url());
        let _ = out.flush();
    }
    // Stop on SIGINT/SIGTERM (so a temporary data directory is removed) or, if asked, on EOF of stdin.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    {
        let tx = done_tx.clone();
        std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(_) => return,
            };
            rt.block_on(wait_for_signal());
            let _ = tx.send(());
        });
    }
    if args.exit_on_stdin_eof {
        let tx = done_tx.clone();
        std::thread::spawn(move || {
            let mut sink = [0u8; 4096];
            let mut stdin = std::io::stdin().lock();
            loop {
                match stdin.read(&mut sink) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => continue,
                }
            }
            let _ = tx.send(());
        });
    }
    let _ = done_rx.recv();
    emu.shutdown();
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        _ => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
