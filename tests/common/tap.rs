//! A transparent TCP relay in front of the emulator that keeps every byte the server sent, so a
//! test can find the session tokens it issued (the emulator's request log never shows them).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

pub struct Tap {
    /// `http://127.0.0.1:PORT`: use it as `server_url`.
    pub url: String,
    answers: Arc<Mutex<Vec<u8>>>,
}

impl Tap {
    /// Relays every connection to `target` (`http://host:port`).
    pub fn start(target: &str) -> Tap {
        let upstream = target
            .strip_prefix("http://")
            .expect("a plain-http target")
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let answers: Arc<Mutex<Vec<u8>>> = Arc::default();
        let kept = answers.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, kept) = (upstream.clone(), kept.clone());
                std::thread::spawn(move || relay(client, &upstream, &kept));
            }
        });
        Tap { url, answers }
    }

    /// Every `token="…"` value in the server's answers so far (the sign-in tokens).
    pub fn tokens(&self) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.answers.lock().unwrap()).into_owned();
        text.split("token=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

fn relay(mut client: TcpStream, upstream: &str, kept: &Mutex<Vec<u8>>) {
    let Ok(mut server) = TcpStream::connect(upstream) else {
        return;
    };
    let (mut from_client, mut to_server) =
        (client.try_clone().unwrap(), server.try_clone().unwrap());
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_server);
        let _ = to_server.shutdown(Shutdown::Write);
    });
    let mut buf = [0u8; 64 * 1024];
    loop {
        match server.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.lock().unwrap().extend_from_slice(&buf[..n]);
                if client.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
    let _ = up.join();
}
