//! A small HTTP/1.1 server standing in for a webhook endpoint or an API (AbuseIPDB): it
//! records every request (method, path, headers, body, when) and answers 200, or what the
//! test scripted for the next requests (a 429 with Retry-After, a 500 …). It listens in a
//! network namespace of the test (or on the host's loopback) and stops when dropped.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::netns::NetNs;
use super::wait::poll_for;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub at: Instant,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as `application/x-www-form-urlencoded` fields.
    pub fn form(&self) -> Vec<(String, String)> {
        let decode = |s: &str| {
            let s = s.replace('+', " ");
            let mut out = Vec::new();
            let b = s.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%' && i + 2 < b.len() {
                    let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 3;
                } else {
                    out.push(b[i]);
                    i += 1;
                }
            }
            String::from_utf8(out).unwrap()
        };
        self.body
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (decode(k), decode(v)))
            .collect()
    }
}

/// A scripted answer: status and extra header lines.
pub type Reply = (u16, Vec<String>);

pub struct Receiver {
    pub addr: SocketAddr,
    got: Arc<Mutex<Vec<Request>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Receiver {
    /// Listen on `bind` ("10.77.0.3:0", "127.0.0.1:8080") inside `ns` (or the test's own
    /// namespace).
    pub fn start(ns: Option<&NetNs>, bind: &str) -> Receiver {
        let bind = bind.to_string();
        let listen =
            move || TcpListener::bind(&bind).unwrap_or_else(|e| panic!("bind {bind}: {e}"));
        let listener = match ns {
            Some(ns) => ns.run(listen),
            None => listen(),
        };
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, sc, st) = (got.clone(), script.clone(), stop.clone());
        // Non-blocking accepts, so that the thread notices the stop wherever the listener is.
        listener.set_nonblocking(true).unwrap();
        let thread = thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        conn.set_nonblocking(false).unwrap();
                        let (g, sc) = (g.clone(), sc.clone());
                        thread::spawn(move || serve(conn, &g, &sc));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Receiver {
            addr,
            got,
            script,
            stop,
            thread: Some(thread),
        }
    }

    /// Answer the next request with `status` and these header lines (then 200 again).
    pub fn reply_next(&self, status: u16, headers: &[&str]) {
        let h = headers.iter().map(|s| s.to_string()).collect();
        self.script.lock().unwrap().push_back((status, h));
    }

    pub fn requests(&self) -> Vec<Request> {
        self.got.lock().unwrap().clone()
    }

    /// Wait until `n` requests came (panics with what came after `limit`).
    #[track_caller]
    pub fn wait(&self, n: usize, limit: Duration) -> Vec<Request> {
        poll_for(limit, || {
            let r = self.requests();
            (r.len() >= n).then_some(r)
        })
        .unwrap_or_else(|| {
            panic!(
                "{n} request(s) expected within {limit:?}, got {:#?}",
                self.requests()
            )
        })
    }
}

fn serve(conn: TcpStream, got: &Mutex<Vec<Request>>, script: &Mutex<VecDeque<Reply>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
    );
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len: usize = (headers.iter())
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    if r.read_exact(&mut body).is_err() {
        return;
    }
    let (status, extra) = script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or((200, Vec::new()));
    got.lock().unwrap().push(Request {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    });
    let mut resp =
        format!("HTTP/1.1 {status} Status\r\nContent-Length: 2\r\nConnection: close\r\n");
    for h in extra {
        resp.push_str(&h);
        resp.push_str("\r\n");
    }
    resp.push_str("\r\n{}");
    let mut conn = r.into_inner();
    let _ = conn.write_all(resp.as_bytes());
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
