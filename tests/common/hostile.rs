//! A small hostile HTTP server on loopback: it answers every request the same bad way (a
//! captive portal's HTML, a 200 MiB body, an entity bomb, 200,000 nested elements, a stall,
//! a 1-byte-per-second drip, a truncated body). Only for tests; stops when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How the server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// 200 with a captive portal's HTML page.
    Html,
    /// 200 with a 200 MiB XML-looking body (sent only as far as the client reads).
    Huge,
    /// 200 with a "billion laughs" entity bomb.
    EntityBomb,
    /// 200 with 200,000 nested elements.
    DeepNesting,
    /// Reads the request, then never answers.
    Stall,
    /// 200 with a 4 KiB body, one byte per second.
    Drip,
    /// 200 announcing 64 KiB, sending 1 KiB, then closing.
    Truncated,
    /// 500 with a 200 MiB error body.
    HugeError,
}

impl Answer {
    pub const ALL: [Answer; 8] = [
        Answer::Html,
        Answer::Huge,
        Answer::EntityBomb,
        Answer::DeepNesting,
        Answer::Stall,
        Answer::Drip,
        Answer::Truncated,
        Answer::HugeError,
    ];
}

pub struct Hostile {
    url: String,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
}

impl Hostile {
    pub fn start(answer: Answer) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let (stop2, requests2) = (stop.clone(), requests.clone());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (stop3, requests3) = (stop2.clone(), requests2.clone());
                        std::thread::spawn(move || serve(conn, answer, &stop3, &requests3));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Hostile {
            url,
            stop,
            requests,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Requests whose head was read.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Reads one request (head and Content-Length body); false when the peer went away.
fn read_request(reader: &mut BufReader<TcpStream>) -> bool {
    let mut length = 0usize;
    let mut first = true;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        if line == "\r\n" && !first {
            break;
        }
        first = false;
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    std::io::copy(
        &mut reader.by_ref().take(length as u64),
        &mut std::io::sink(),
    )
    .is_ok()
}

fn head(status: &str, content_type: &str, length: usize) -> String {
    format!("HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n")
}

fn serve(conn: TcpStream, answer: Answer, stop: &AtomicBool, requests: &AtomicUsize) {
    let mut out = conn.try_clone().unwrap();
    let mut reader = BufReader::new(conn);
    while read_request(&mut reader) {
        requests.fetch_add(1, Ordering::Relaxed);
        let ok = match answer {
            Answer::Html => {
                let body = "<!DOCTYPE html><html><head><title>Sign in to the guest network</title></head><body><form>Accept the terms</form></body></html>";
                out.write_all(head("200 OK", "text/html", body.len()).as_bytes())
                    .and_then(|()| out.write_all(body.as_bytes()))
                    .is_ok()
            }
            Answer::Huge | Answer::HugeError => {
                let status = if answer == Answer::Huge {
                    "200 OK"
                } else {
                    "500 Internal Server Error"
                };
                let len = 200 * 1024 * 1024;
                let piece = "<tsResponse>".to_owned() + &" ".repeat(64 * 1024 - 12);
                let mut sent = 0;
                let mut ok = out
                    .write_all(head(status, "application/xml", len).as_bytes())
                    .is_ok();
                while ok && sent < len && !stop.load(Ordering::Relaxed) {
                    ok = out.write_all(piece.as_bytes()).is_ok();
                    sent += piece.len();
                }
                ok
            }
            Answer::EntityBomb => {
                let mut body = String::from(
                    "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n",
                );
                for i in 1..10 {
                    let prev = if i == 1 {
                        "lol".to_owned()
                    } else {
                        format!("lol{}", i - 1)
                    };
                    body.push_str(&format!(
                        "<!ENTITY lol{i} \"{}\">\n",
                        format!("&{prev};").repeat(10)
                    ));
                }
                body.push_str("]>\n<tsResponse><serverInfo><restApiVersion>&lol9;</restApiVersion></serverInfo><credentials token=\"&lol9;\"><site id=\"&lol9;\"/></credentials></tsResponse>");
                out.write_all(head("200 OK", "application/xml", body.len()).as_bytes())
                    .and_then(|()| out.write_all(body.as_bytes()))
                    .is_ok()
            }
            Answer::DeepNesting => {
                let depth = 200_000;
                let body = "<tsResponse>".to_owned()
                    + &"<a>".repeat(depth)
                    + &"</a>".repeat(depth)
                    + "</tsResponse>";
                out.write_all(head("200 OK", "application/xml", body.len()).as_bytes())
                    .and_then(|()| out.write_all(body.as_bytes()))
                    .is_ok()
            }
            Answer::Stall => {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                false
            }
            Answer::Drip => {
                let body = "<tsResponse>".to_owned() + &" ".repeat(4096 - 25) + "</tsResponse>";
                let mut ok = out
                    .write_all(head("200 OK", "application/xml", body.len()).as_bytes())
                    .is_ok();
                for b in body.as_bytes() {
                    if !ok || stop.load(Ordering::Relaxed) {
                        break;
                    }
                    ok = out.write_all(&[*b]).and_then(|()| out.flush()).is_ok();
                    std::thread::sleep(Duration::from_secs(1));
                }
                ok
            }
            Answer::Truncated => {
                let body = "<tsResponse>".to_owned() + &" ".repeat(1024);
                let _ = out
                    .write_all(head("200 OK", "application/xml", 64 * 1024).as_bytes())
                    .and_then(|()| out.write_all(body.as_bytes()));
                false
            }
        };
        if !ok {
            break;
        }
    }
}
