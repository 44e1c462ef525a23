//! Blocklist feeds with real parts: a feed served over HTTP by a small server in the server's
//! network namespace, the real `f2bd` enforcing it with nftables there, and packets from the
//! attacker namespace (listed addresses cannot connect, neighbours can). Tests print SKIP and
//! pass when not root.
//!
//! Run: `cargo test --test feeds` (as root).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    connect, listen, root_and_tools_or_skip, wait_for, F2bd, NetNs, Outcome, Pair, PrivateBus,
};
use serde_json::Value;

const PORT: u16 = 2222;

// ---------------------------------------------------------------------------------------------
// A feed server: one body with an ETag; If-None-Match with it gets 304 Not Modified.
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Served {
    body: Vec<u8>,
    version: u32,
    /// (If-None-Match sent, status answered) of every request.
    log: Vec<(Option<String>, u16)>,
}

struct FeedServer {
    addr: SocketAddr,
    state: Arc<Mutex<Served>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FeedServer {
    /// Listens on 127.0.0.1 in `ns`, serving `body` at every path.
    fn start(ns: &NetNs, body: &str) -> FeedServer {
        let listener = ns.run(|| TcpListener::bind("127.0.0.1:0").unwrap());
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(Served::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !sp.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => answer(conn, &st),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        let s = FeedServer {
            addr,
            state,
            stop,
            thread: Some(thread),
        };
        s.serve(body);
        s
    }

    fn url(&self) -> String {
        format!("http://{}/list.txt", self.addr)
    }

    /// From now on, serve `body` (a new version, a new ETag).
    fn serve(&self, body: &str) {
        let mut s = self.state.lock().unwrap();
        s.body = body.as_bytes().to_vec();
        s.version += 1;
    }

    fn log(&self) -> Vec<(Option<String>, u16)> {
        self.state.lock().unwrap().log.clone()
    }
}

impl Drop for FeedServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn answer(mut conn: TcpStream, state: &Mutex<Served>) {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&req).to_string();
    let inm = text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("if-none-match")
            .then(|| v.trim().to_string())
    });
    let mut s = state.lock().unwrap();
    let etag = format!("\"v{}\"", s.version);
    let reply = if inm.as_deref() == Some(etag.as_str()) {
        s.log.push((inm, 304));
        format!("HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\nConnection: close\r\n\r\n")
            .into_bytes()
    } else {
        s.log.push((inm, 200));
        let mut r = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nETag: {etag}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            s.body.len()
        )
        .into_bytes();
        r.extend_from_slice(&s.body);
        r
    };
    drop(s);
    let _ = conn.write_all(&reply);
}

// ---------------------------------------------------------------------------------------------
// f2bd, the CLI and packets
// ---------------------------------------------------------------------------------------------

fn config(url: &str, extra: &str) -> String {
    format!("{extra}\n[feed.bl]\nurl = \"{url}\"\nrefresh = \"1h\"\nmax_size = 400\n")
}

fn start(pair: &Pair, bus: &PrivateBus, config: &str) -> F2bd {
    F2bd::with_config(config)
        .bus(&bus.address)
        .firewall("nftables")
        .netns(&pair.srv)
        .start()
}

fn f2b(bus: &PrivateBus, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_f2b"))
        .args(args)
        .args(["--bus", &bus.address])
        .output()
        .unwrap()
}

#[track_caller]
fn f2b_ok(bus: &PrivateBus, args: &[&str]) -> String {
    let o = f2b(bus, args);
    assert!(
        o.status.success(),
        "f2b {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Feed `bl` as `f2b feeds --json` shows it.
fn feed(bus: &PrivateBus) -> Value {
    let list: Value = serde_json::from_str(&f2b_ok(bus, &["feeds", "--json"])).unwrap();
    list.as_array()
        .and_then(|l| l.iter().find(|f| f["name"] == "bl").cloned())
        .unwrap_or(Value::Null)
}

fn refresh(bus: &PrivateBus) -> Value {
    f2b_ok(bus, &["feeds", "--refresh", "bl"]);
    feed(bus)
}

/// Which of the attacker's addresses can connect to the server's port. Those that can are
/// tried first: a feed drops every packet of a listed address, IPv6 neighbour discovery
/// included, and a neighbour solicitation that went unanswered from a listed source would hold
/// up the next connection to the same server for seconds.
#[track_caller]
fn reach(pair: &Pair, srcs: &[(&str, bool)]) {
    let mut srcs = srcs.to_vec();
    srcs.sort_by_key(|&(_, ok)| !ok);
    for (src, ok) in srcs {
        let dst = if src.contains(':') {
            Pair::SRV6
        } else {
            Pair::SRV4
        };
        let want = if ok {
            Outcome::Connected
        } else {
            Outcome::TimedOut
        };
        assert_eq!(
            connect(&pair.atk, src, dst, PORT),
            want,
            "{src} -> {dst}:{PORT}"
        );
    }
}

fn nft_table(ns: &NetNs) -> String {
    String::from_utf8_lossy(&ns.sh_output("nft list table inet f2b").stdout).into_owned()
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

/// Issue 16's "done when": a feed served over HTTP is enforced (a listed address cannot
/// connect, a neighbour can); changed on the server and refreshed; 304 Not Modified; a broken
/// or too large body keeps the previous list and names its bad lines; removed on reload.
#[test]
fn a_feed_over_http_is_enforced_refreshed_and_survives_a_broken_upstream() {
    if !root_and_tools_or_skip(
        "a_feed_over_http_is_enforced_refreshed_and_survives_a_broken_upstream",
    ) {
        return;
    }
    let pair = Pair::new();
    let bus = PrivateBus::start();
    let server = FeedServer::start(&pair.srv, "# test list\n10.77.0.2\nfd77::2 ; scanner\n");
    let cfg = config(&server.url(), "");
    let d = start(&pair, &bus, &cfg);
    let _l = listen(&pair.srv, PORT);
    wait_for(Duration::from_secs(10), "the feed to be enforced", || {
        feed(&bus)["elements"] == 2
    });
    let f = feed(&bus);
    assert_eq!(
        (f["entries_v4"].as_u64(), f["entries_v6"].as_u64()),
        (Some(1), Some(1)),
        "{f}"
    );
    assert_eq!(f["last_error"], "", "{f}");
    reach(
        &pair,
        &[
            (Pair::ATK4, false),
            (Pair::ATK4_B, true),
            (Pair::ATK6, false),
            (Pair::ATK6_B, true),
        ],
    );
    let table = nft_table(&pair.srv);
    assert!(
        table.contains("set feed.bl-n4") && table.contains("set feed.bl-n6"),
        "{table}"
    );

    // Changed on the server: the new address is dropped, the removed one gets through again.
    server.serve("10.77.0.3\n");
    let f = refresh(&bus);
    assert_eq!(f["elements"], 1, "{f}");
    reach(
        &pair,
        &[
            (Pair::ATK4, true),
            (Pair::ATK4_B, false),
            (Pair::ATK6, true),
        ],
    );
    let changed = f["last_change_usec"].as_u64().unwrap();

    // Unchanged: a conditional request, answered 304; the list stays.
    let f = refresh(&bus);
    let log = server.log();
    assert_eq!(
        log.last(),
        Some(&(Some("\"v2\"".to_string()), 304)),
        "{log:?}"
    );
    assert_eq!(log[0], (None, 200), "the first fetch is unconditional");
    assert_eq!(f["last_change_usec"].as_u64(), Some(changed), "{f}");
    assert!(f["last_fetch_usec"].as_u64().unwrap() > changed, "{f}");
    reach(&pair, &[(Pair::ATK4_B, false)]);

    // A broken upstream (an error page served with 200): the previous list stays, the bad
    // lines are named.
    server.serve("<html>\n<body>Bad gateway</body>\n</html>\n");
    let f = refresh(&bus);
    assert_eq!(f["elements"], 1, "{f}");
    assert!(f["last_error"].as_str().unwrap().contains("line 1"), "{f}");
    assert_eq!(f["bad_lines"], 3, "{f}");
    assert!(
        f["bad_examples"][2]
            .as_str()
            .unwrap()
            .starts_with("line 3: \"</html>\""),
        "{f}"
    );
    assert_eq!(f["fetch_failures"], 1, "{f}");
    reach(&pair, &[(Pair::ATK4_B, false), (Pair::ATK4, true)]);
    let text = f2b_ok(&bus, &["feeds"]);
    assert!(
        text.contains("bl: error: no blocklist") && text.contains("bl: bad line 1:"),
        "{text}"
    );

    // Larger than max_size (400 bytes): refused while it arrives; the list stays.
    server.serve(&"10.77.0.2\n".repeat(50));
    let f = refresh(&bus);
    assert!(
        f["last_error"].as_str().unwrap().contains("max_size"),
        "{f}"
    );
    reach(&pair, &[(Pair::ATK4_B, false), (Pair::ATK4, true)]);

    // Removed from the configuration: its sets go on reload.
    std::fs::write(d.config(), "").unwrap();
    f2b_ok(&bus, &["reload"]);
    reach(&pair, &[(Pair::ATK4_B, true)]);
    assert!(
        !nft_table(&pair.srv).contains("feed.bl"),
        "{}",
        nft_table(&pair.srv)
    );
    d.stop();
}

/// The last good copy on disk is enforced at start, before any fetch: a feed server that is
/// down then leaves the list in force (and the failed fetch is reported).
#[test]
fn a_feed_server_down_at_start_leaves_the_last_good_copy_enforced() {
    if !root_and_tools_or_skip("a_feed_server_down_at_start_leaves_the_last_good_copy_enforced") {
        return;
    }
    let pair = Pair::new();
    let bus = PrivateBus::start();
    let server = FeedServer::start(&pair.srv, "10.77.0.2\n");
    let d = start(&pair, &bus, &config(&server.url(), ""));
    wait_for(Duration::from_secs(10), "the feed to be enforced", || {
        feed(&bus)["elements"] == 1
    });
    let home = d.stop();
    // Nothing left in the kernel, and the server is gone.
    pair.srv.sh("nft delete table inet f2b");
    drop(server);
    let _l = listen(&pair.srv, PORT);
    reach(&pair, &[(Pair::ATK4, true)]);
    let d = F2bd::in_home(home)
        .bus(&bus.address)
        .firewall("nftables")
        .netns(&pair.srv)
        .start();
    // READY=1 came after the copy was enforced: no waiting.
    reach(&pair, &[(Pair::ATK4, false), (Pair::ATK4_B, true)]);
    let f = refresh(&bus);
    assert!(
        f["last_error"]
            .as_str()
            .unwrap()
            .contains("error sending request"),
        "{f}"
    );
    assert_eq!(f["elements"], 1, "{f}");
    reach(&pair, &[(Pair::ATK4, false)]);
    d.stop();
}

/// ignoreip and the host's own addresses win over a feed: a listed CIDR holding them is split
/// around them.
#[test]
fn ignoreip_inside_a_listed_cidr_stays_reachable() {
    if !root_and_tools_or_skip("ignoreip_inside_a_listed_cidr_stays_reachable") {
        return;
    }
    let pair = Pair::new();
    let bus = PrivateBus::start();
    let server = FeedServer::start(&pair.srv, "10.77.0.0/24\nfd77::/64\n");
    let extra = "[defaults]\nignoreip = [\"10.77.0.3\", \"fd77::3\"]\n";
    let d = start(&pair, &bus, &config(&server.url(), extra));
    let _l = listen(&pair.srv, PORT);
    wait_for(Duration::from_secs(10), "the feed to be enforced", || {
        feed(&bus)["elements"].as_u64() > Some(0)
    });
    reach(
        &pair,
        &[
            (Pair::ATK4, false),
            (Pair::ATK4_B, true),
            (Pair::ATK6, false),
            (Pair::ATK6_B, true),
        ],
    );
    // The server's own address (10.77.0.1, in the listed /24) still reaches itself.
    assert_eq!(
        connect(&pair.srv, Pair::SRV4, Pair::SRV4, PORT),
        Outcome::Connected
    );
    d.stop();
}

/// 100,000 ranges through the real nftables backend in bounded steps (printed figures: the
/// longest step is how long a feed can hold up a ban).
#[test]
fn a_large_feed_goes_in_bounded_steps() {
    use f2b::feeds::AddrRanges;
    use f2b::firewall::nft::Nftables;
    use f2b::firewall::{FeedRules, Firewall, Protocol, Verdict};
    if !root_and_tools_or_skip("a_large_feed_goes_in_bounded_steps") {
        return;
    }
    let ns = NetNs::new();
    ns.run(|| {
        let mut fw = Nftables::new().unwrap();
        let rules = FeedRules {
            name: "big".into(),
            ports: Vec::new(),
            protocol: Protocol::All,
            verdict: Verdict::Drop,
        };
        fw.setup_feeds(&[rules]).unwrap();
        // 100,000 /32s spread over 20.0.0.0/8 (every other address: none merge).
        let list = |skip: u32| {
            let v4 = (0..100_000u32)
                .filter(|i| skip == 0 || i % skip != 0)
                .map(|i| {
                    let a = u128::from(0x1400_0000 + 2 * i + u32::from(skip == 0 || i % 7 != 0));
                    (a, a)
                })
                .collect();
            AddrRanges { v4, v6: Vec::new() }
        };
        for (what, want) in [
            ("100,000 new ranges", list(0)),
            ("a tenth removed, a fifth moved", list(10)),
        ] {
            let t = Instant::now();
            let (mut steps, mut longest) = (0, Duration::ZERO);
            loop {
                let s0 = Instant::now();
                let s = fw
                    .sync_feed("big", &want, f2b::engine::FEED_STEP_ELEMENTS)
                    .unwrap();
                longest = longest.max(s0.elapsed());
                steps += 1;
                if s.remaining == 0 {
                    assert_eq!(s.held, (want.v4.len(), 0));
                    break;
                }
                assert!(steps < 1000, "no progress");
            }
            println!(
                "feed sync, {what}: {steps} steps, {:.0} ms in all, longest step {:.1} ms",
                t.elapsed().as_secs_f64() * 1e3,
                longest.as_secs_f64() * 1e3
            );
        }
        let out = std::process::Command::new("nft")
            .args(["list", "set", "inet", "f2b", "feed.big-n4"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let elements = text
            .split(|c: char| c == ',' || c == '{' || c == '}' || c.is_whitespace())
            .filter(|w| w.starts_with("20."))
            .count();
        assert_eq!(elements, list(10).v4.len(), "elements in the kernel");
    });
}
