//! HTTP layer: the serve loop, wired to connection handling (`connection`), fault injection
//! (`faults`), routing (`routing`), one module per REST resource, and the control API.

mod auth;
mod body;
mod connection;
mod context;
mod control;
mod datasources;
mod faults;
mod info;
mod jobs;
mod listing;
mod projects;
mod publish;
mod response;
mod routing;
mod uploads;

use std::sync::Arc;
use std::time::Duration;

use crate::state::Shared;

pub(crate) use connection::tls_acceptor;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The server thread: its own runtime, the accept loop, shutdown.
pub(crate) fn run(
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: tokio::sync::oneshot::Receiver<()>,
    ready: std::sync::mpsc::Sender<std::io::Result<()>>,
) {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tableau-emulator-worker")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        let mut stop = stop;
        let mut connections: u64 = 0;
        loop {
            tokio::select! {
                _ = &mut stop => break,
                r = listener.accept() => match r {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        connections += 1;
                        connection::spawn(shared.clone(), stream, connections, tls.clone());
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                },
            }
        }
    });
    rt.shutdown_timeout(Duration::from_secs(2));
}
