//! `tabpub demo`: the problem and the fix, side by side, against a local emulator whose
//! sessions expire faster than the simulated upstream produces the extract.

use std::time::{Duration, Instant};

use crate::usual_tool::{Failure, UsualTool};
use tableau_emulator::{Config as EmulatorConfig, Emulator};
use tableau_publisher::{Error, ErrorKind, Publisher};

/// The emulator's session lifetime.
const TOKEN_TTL: Duration = Duration::from_secs(2);
/// How long the simulated upstream takes to produce the extract.
const UPSTREAM: Duration = Duration::from_secs(5);
/// Size of the generated extract: above 64 MiB, so it is uploaded in chunks and published as a job.
const EXTRACT_BYTES: usize = 72 * 1024 * 1024;
const FEED_CHUNK: usize = 2 * 1024 * 1024;
/// The site, and the personal access token both tools sign in with.
const SITE: &str = "";
const TOKEN_NAME: &str = "ci";
const TOKEN_SECRET: &str = "ci-secret";

fn internal(e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Internal, format!("demo: {e}"))
}

/// Deterministic bytes after a real Hyper header, standing in for an extract the host writes.
fn extract_piece(offset: usize, len: usize) -> Vec<u8> {
    const HEADER: &[u8] = include_bytes!("../../tests/fixtures/sample.hyper");
    (offset..offset + len)
        .map(|i| match HEADER.get(i) {
            Some(b) => *b,
            None => (i as u64)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .rotate_left(17) as u8,
        })
        .collect()
}

pub fn run() -> Result<(), Error> {
    let emulator = Emulator::start(EmulatorConfig {
        token_ttl: TOKEN_TTL,
        ..EmulatorConfig::default()
    })
    .map_err(internal)?;
    let url = emulator.url();
    println!(
        "Local Tableau emulator at {url}; sessions expire after {} s idle.",
        TOKEN_TTL.as_secs()
    );
    println!(
        "The upstream job will take {} s to produce a {} MiB extract.\n",
        UPSTREAM.as_secs(),
        EXTRACT_BYTES >> 20
    );

    let config_json = serde_json::json!({
        "server_url": url,
        "site": SITE,
        "auth": {"method": "pat", "token_name": TOKEN_NAME, "token_secret": TOKEN_SECRET},
        "project": "Finance/Quarterly",
        "datasource_name": "Nightly Sales",
        "mode": "overwrite",
        "chunk_size_bytes": 16 * 1024 * 1024
    })
    .to_string();

    // The usual way: sign in when the workflow starts.
    // A tool that neither retries nor signs in again, as most do.
    let early = UsualTool::sign_in(&url, SITE, TOKEN_NAME, TOKEN_SECRET)
        .map_err(|e| internal(format!("the usual tool could not sign in: {e}")))?;
    println!("[usual tool]    signed in at t=0 s, before the upstream ran.");

    // Our way: spool what the upstream produces, and sign in only at the end.
    let start = Instant::now();
    let mut publisher = Publisher::new(&config_json)?;
    let pieces = EXTRACT_BYTES.div_ceil(FEED_CHUNK);
    let pause = UPSTREAM / pieces as u32;
    for i in 0..pieces {
        let offset = i * FEED_CHUNK;
        let len = FEED_CHUNK.min(EXTRACT_BYTES - offset);
        publisher.feed(&extract_piece(offset, len))?;
        std::thread::sleep(pause);
    }
    println!(
        "[upstream]      produced {} MiB in {:.1} s (fed to the plugin as it came).",
        EXTRACT_BYTES >> 20,
        start.elapsed().as_secs_f64()
    );

    match early.initiate_upload() {
        Err(Failure::Status {
            status: 401,
            message,
        }) => {
            println!("[usual tool]    upload now fails, its token died while waiting:\n                {message}");
        }
        Err(e) => {
            return Err(internal(format!(
                "the early session failed unexpectedly: {e}"
            )))
        }
        Ok(_) => {
            return Err(internal(
                "the early session was still valid; the demo expects it to have expired",
            ))
        }
    }

    // Tableau Cloud ends sessions after 120 minutes, so a long upload can outlive its token too.
    // Show that: every session ends after the 4th authenticated request of the publish.
    emulator.expire_tokens_after_requests(4);
    println!("[emulator]      will end every session after the next 4 authenticated requests (mid-upload).");

    let t = Instant::now();
    let result = publisher.finalize_and_publish()?.clone();
    println!(
        "[tableau-publisher] signed in after the data was ready, signed in again when the session ended mid-upload ({} sign-ins), and published in {:.1} s:",
        result.sign_ins,
        t.elapsed().as_secs_f64()
    );
    println!(
        "{}",
        serde_json::to_string_pretty(&result).map_err(internal)?
    );

    let stored = emulator
        .datasources()
        .into_iter()
        .find(|d| Some(&d.id) == result.datasource_id.as_ref())
        .ok_or_else(|| internal("the emulator has no such data source"))?;
    if stored.sha256 != result.sha256 || stored.size != result.bytes {
        return Err(internal(
            "the emulator stored different bytes than were fed",
        ));
    }
    println!(
        "\nThe emulator holds \"{}\" with the same {} bytes (sha256 {}…).",
        stored.name,
        stored.size,
        &stored.sha256[..16]
    );
    println!("Requests the emulator saw:");
    for r in emulator.requests() {
        println!(
            "  {:>3} {:<6} {:<60} {}{}",
            r.seq,
            r.method,
            shorten(&r.path.replace(&result.site_id, "{site}")),
            r.status,
            r.code.map(|c| format!(" ({c})")).unwrap_or_default()
        );
    }
    Ok(())
}

fn shorten(path: &str) -> String {
    if path.chars().count() > 60 {
        format!("{}…", path.chars().take(59).collect::<String>())
    } else {
        path.to_owned()
    }
}
