//! A small forward proxy on loopback for the proxy tests: `CONNECT` tunnels (HTTPS targets)
//! and absolute-form requests (HTTP targets), each connection relayed to its target as raw
//! bytes. It records the first line and `Proxy-Authorization` of each connection, and answers
//! 407 when a required authorization is missing or wrong.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// What the proxy saw at the start of one client connection.
#[derive(Clone, Debug)]
pub struct Seen {
    pub first_line: String,
    pub authorization: Option<String>,
}

pub struct TestProxy {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl TestProxy {
    /// Starts the proxy; with `require`, connections must send `Proxy-Authorization: <require>`.
    pub fn start(require: Option<&str>) -> TestProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (log, require) = (seen.clone(), require.map(str::to_owned));
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (log, require) = (log.clone(), require.clone());
                std::thread::spawn(move || relay(client, &log, require.as_deref()));
            }
        });
        TestProxy { url, seen }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn relay(mut client: TcpStream, log: &Mutex<Vec<Seen>>, require: Option<&str>) {
    // The request head, and whatever body bytes came with it.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match client.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let first_line = head.lines().next().unwrap_or("").to_owned();
    let authorization = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("proxy-authorization")
            .then(|| v.trim().to_owned())
    });
    log.lock().unwrap().push(Seen {
        first_line: first_line.clone(),
        authorization: authorization.clone(),
    });
    if require.is_some() && authorization.as_deref() != require {
        let _ = client.write_all(
            b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    }
    let mut words = first_line.split(' ');
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let upstream_addr = if method == "CONNECT" {
        target.to_owned()
    } else {
        // http://host:port/path
        let rest = target.strip_prefix("http://").unwrap_or(target);
        rest.split('/').next().unwrap_or("").to_owned()
    };
    let Ok(mut upstream) = TcpStream::connect(&upstream_addr) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    if method == "CONNECT" {
        let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
        let _ = upstream.write_all(&buf[head_end..]);
    } else {
        let _ = upstream.write_all(&buf);
    }
    let (mut from_client, mut to_upstream) =
        (client.try_clone().unwrap(), upstream.try_clone().unwrap());
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_upstream);
        let _ = to_upstream.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut upstream, &mut client);
    let _ = client.shutdown(Shutdown::Write);
    let _ = up.join();
}
