//! The fleet (issue 17) with real parts: `nats-server` with JetStream in a network namespace,
//! f2bd hosts each in a namespace of its own (own journal, state and nftables), all on one
//! bridge. A ban on one host must reach the others' kernel sets.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::nats::{nats_or_skip, FleetNet, NatsServer};
use common::{f2bd, fail, root_and_tools_or_skip, wait_for, F2bd, NetNs, PrivateBus};
use f2b::engine::now_us;

/// One f2bd of the fleet: its namespace, address and process.
struct Host {
    name: &'static str,
    ns: NetNs,
    d: Option<F2bd>,
}

fn config(name: &str, servers: &[String], jail: &str, fleet: &str) -> String {
    let servers: Vec<String> = servers.iter().map(|s| format!("{s:?}")).collect();
    format!(
        "[jail.ssh]\nenabled = true\nfilter = \"testssh\"\nmaxretry = 1\nbantime = \"1h\"\n{jail}\n\
         [fleet]\nservers = [{}]\nhost = \"{name}\"\n{fleet}\n",
        servers.join(", ")
    )
}

impl Host {
    fn start(net: &mut FleetNet, name: &'static str, cfg: &str) -> Host {
        Host::start_on(net, name, cfg, None)
    }

    /// With `org.f2b` on a private bus.
    fn start_on(net: &mut FleetNet, name: &'static str, cfg: &str, bus: Option<&str>) -> Host {
        let (ns, _addr) = net.host();
        let mut b = F2bd::with_config(cfg).firewall("nftables");
        if let Some(a) = bus {
            b = b.bus(a);
        }
        let d = b.netns(&ns).start();
        Host {
            name,
            ns,
            d: Some(d),
        }
    }

    fn f2bd(&self) -> &F2bd {
        self.d.as_ref().expect("running")
    }

    /// Failures of `ips` in this host's journal (maxretry 1: one ban each).
    fn attacked_by(&self, ips: &[String]) {
        let t = now_us();
        let entries = (ips.iter().enumerate())
            .map(|(i, ip)| fail(t + i as u64, ip))
            .collect();
        self.f2bd().journal(entries);
    }

    /// The elements of the ssh jail's IPv4 set, as `nft` lists them.
    fn set(&self) -> String {
        let o = self.ns.sh_output("nft list set inet f2b ssh-v4");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn has(&self, ip: &str) -> bool {
        // "192.0.2.1 " or "192.0.2.1," or "192.0.2.1 }": not a prefix of 192.0.2.10.
        let s = self.set();
        [" ", ",", "\n"]
            .iter()
            .any(|end| s.contains(&format!("{ip}{end}")))
    }

    #[track_caller]
    fn wait_has(&self, ip: &str, limit: Duration) -> Duration {
        let t = Instant::now();
        if !common::wait::poll_until(limit, || self.has(ip)) {
            panic!(
                "{} does not ban {ip} within {limit:?}; set:\n{}\n--- f2bd ---\n{}",
                self.name,
                self.set(),
                self.f2bd().log()
            );
        }
        t.elapsed()
    }

    fn stop(&mut self) -> tempfile::TempDir {
        self.d.take().expect("running").stop()
    }

    fn restart(&mut self, home: tempfile::TempDir) {
        self.d = Some(
            f2bd::F2bd::in_home(home)
                .firewall("nftables")
                .netns(&self.ns)
                .start(),
        );
    }
}

/// `f2b ARGS… --bus ADDRESS --json`, parsed.
fn f2b_json(bus: &PrivateBus, args: &[&str]) -> serde_json::Value {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_f2b"))
        .args(args)
        .args(["--bus", &bus.address, "--json"])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "f2b {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The "Done when": a ban on a is in b's and c's sets within 1 s; c, stopped while a
/// bans another address, has it within 2 s of starting again; b's ignoreip wins.
#[test]
fn a_ban_reaches_the_fleet_and_a_stopped_host_catches_up() {
    let test = "a_ban_reaches_the_fleet_and_a_stopped_host_catches_up";
    if !root_and_tools_or_skip(test) || !nats_or_skip(test) {
        return;
    }
    let mut net = FleetNet::new();
    let nats = NatsServer::start(&net, FleetNet::SERVER);
    let servers = [nats.url()];
    let a = Host::start(&mut net, "a", &config("a", &servers, "", ""));
    let b = Host::start(
        &mut net,
        "b",
        &config(
            "b",
            &servers,
            "ignoreip = [\"127.0.0.0/8\", \"192.0.2.99\"]",
            "",
        ),
    );
    let mut c = Host::start(&mut net, "c", &config("c", &servers, "", ""));

    // a bans: b and c have it within a second of a's own set.
    a.attacked_by(&["192.0.2.1".into()]);
    let local = a.wait_has("192.0.2.1", Duration::from_secs(5));
    let at_a = Instant::now();
    b.wait_has("192.0.2.1", Duration::from_secs(5));
    let on_b = at_a.elapsed();
    c.wait_has("192.0.2.1", Duration::from_secs(5));
    let on_c = at_a.elapsed();
    println!(
        "fleet: ban in a's set {:.1} ms after its journal entry; in b's set {:.1} ms and in \
         c's {:.1} ms after a's",
        ms(local),
        ms(on_b),
        ms(on_c)
    );
    assert!(on_b < Duration::from_secs(1), "b: {on_b:?}");
    assert!(on_c < Duration::from_secs(1), "c: {on_c:?}");

    // An address in b's ignoreip is banned on a and c, never on b. A later ban reaching b
    // shows that b has read past it.
    a.attacked_by(&["192.0.2.99".into()]);
    c.wait_has("192.0.2.99", Duration::from_secs(5));
    a.attacked_by(&["192.0.2.3".into()]);
    b.wait_has("192.0.2.3", Duration::from_secs(5));
    assert!(!b.has("192.0.2.99"), "b banned its ignoreip:\n{}", b.set());

    // c stopped while a bans: it catches up from its stored sequence when it starts again.
    let home = c.stop();
    a.attacked_by(&["192.0.2.4".into()]);
    b.wait_has("192.0.2.4", Duration::from_secs(5));
    let t = Instant::now();
    c.restart(home);
    let ready = t.elapsed();
    let caught_up = c.wait_has("192.0.2.4", Duration::from_secs(5));
    println!(
        "fleet: c restarted: READY {:.1} ms after its start, a's ban in its set {:.1} ms after \
         READY",
        ms(ready),
        ms(caught_up)
    );
    // From READY: before it, a debug build spends its time compiling the filter library (the
    // start itself is the daemon's, not the fleet's, and is measured by benches/latency.rs).
    assert!(caught_up < Duration::from_secs(2), "{caught_up:?}");
    assert!(c.has("192.0.2.1") && c.has("192.0.2.99"), "{}", c.set());
    // Nothing of a's was applied twice on c: one "by peer a" line per address in its log.
    let log = c.f2bd().log();
    for ip in ["192.0.2.1", "192.0.2.4"] {
        let n = (log.lines())
            .filter(|l| l.contains(&format!("Ban {ip} ")) && l.contains("by peer a"))
            .count();
        assert_eq!(n, 1, "{ip} applied {n} times on c:\n{log}");
    }
    // And no echo: b and c never publish what they got from a (only a's bans are in the
    // stream, so a never applies its own bans as a peer's).
    assert!(!a.f2bd().log().contains("by peer"), "{}", a.f2bd().log());
}

/// `accept` limits whose bans are applied; NATS restarted mid-stream loses nothing.
#[test]
fn accept_and_a_restarted_server() {
    let test = "accept_and_a_restarted_server";
    if !root_and_tools_or_skip(test) || !nats_or_skip(test) {
        return;
    }
    let mut net = FleetNet::new();
    let mut nats = NatsServer::start(&net, FleetNet::SERVER);
    let servers = [nats.url()];
    let a = Host::start(&mut net, "a", &config("a", &servers, "", ""));
    let b = Host::start(&mut net, "b", &config("b", &servers, "", ""));
    let bus = PrivateBus::start();
    let c_cfg = config("c", &servers, "", "accept = [\"a\"]");
    let c = Host::start_on(&mut net, "c", &c_cfg, Some(&bus.address));

    // b is not accepted by c: c ignores b's ban, and takes a's ban published after it.
    b.attacked_by(&["192.0.2.20".into()]);
    a.wait_has("192.0.2.20", Duration::from_secs(5));
    a.attacked_by(&["192.0.2.21".into()]);
    c.wait_has("192.0.2.21", Duration::from_secs(5));
    assert!(!c.has("192.0.2.20"), "c applied a ban of b:\n{}", c.set());
    // What c shows: the peer ban's origin, the refusal, the peers, no lag.
    let bans = f2b_json(&bus, &["bans"]);
    let ban = (bans.as_array().unwrap().iter())
        .find(|b| b["address"] == "192.0.2.21")
        .unwrap_or_else(|| panic!("{bans}"));
    assert_eq!(ban["origin"], "peer:a", "{ban}");
    let fleet = f2b_json(&bus, &["fleet"]);
    assert_eq!(fleet["host"], "c", "{fleet}");
    assert_eq!(fleet["connected"], true, "{fleet}");
    assert_eq!(fleet["lag"], 0, "{fleet}");
    assert_eq!(fleet["refused"]["not_accepted"], 1, "{fleet}");
    let peers = fleet["peers"].as_array().unwrap();
    assert!(
        peers.iter().any(|p| p["host"] == "a" && p["applied"] == 1),
        "{fleet}"
    );

    // The server goes away (killed) while a bans; it comes back: every ban reaches b.
    nats.kill();
    wait_for(Duration::from_secs(10), "a to notice NATS is gone", || {
        a.f2bd().status().contains("fleet disconnected")
    });
    let ips: Vec<String> = (1..=50).map(|i| format!("192.0.2.{}", 100 + i)).collect();
    a.attacked_by(&ips);
    a.wait_has("192.0.2.150", Duration::from_secs(5));
    let t = Instant::now();
    nats.restart(&net);
    for ip in &ips {
        b.wait_has(ip, Duration::from_secs(30));
    }
    println!(
        "fleet: NATS killed, 50 bans on a meanwhile, all on b {:.1} ms after NATS restarted",
        ms(t.elapsed())
    );
    a.f2bd()
        .wait_status(Duration::from_secs(10), "connected again", |s| {
            !s.contains("fleet disconnected")
        });
}

/// 10,000 bans on one host reach the others.
#[test]
fn a_flood_of_bans_reaches_the_fleet() {
    let test = "a_flood_of_bans_reaches_the_fleet";
    if !root_and_tools_or_skip(test) || !nats_or_skip(test) {
        return;
    }
    const N: u32 = 10_000;
    let mut net = FleetNet::new();
    let nats = NatsServer::start(&net, FleetNet::SERVER);
    let servers = [nats.url()];
    let many = "max_bans_per_peer_per_minute = 20000";
    let a = Host::start(&mut net, "a", &config("a", &servers, "", many));
    let b = Host::start(&mut net, "b", &config("b", &servers, "", many));
    let ips: Vec<String> = (0..N)
        .map(|i| Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 1)) + i).to_string())
        .collect();
    let t = Instant::now();
    a.attacked_by(&ips);
    let last = ips.last().unwrap();
    a.wait_has(last, Duration::from_secs(60));
    let local = t.elapsed();
    let count = |h: &Host| h.set().matches("198.18.").count();
    wait_for(
        Duration::from_secs(120),
        "b to have all 10,000 bans",
        || count(&b) == N as usize,
    );
    println!(
        "fleet: 10,000 bans on a in {:.1} ms; all in b's set after {:.1} ms",
        ms(local),
        ms(t.elapsed())
    );
}

/// The README's nats-server configuration: one user per host, allowed to publish bans only
/// under its own name. The fleet works with those permissions, and a host cannot publish as
/// another.
#[test]
fn per_host_users_publish_only_as_themselves() {
    let test = "per_host_users_publish_only_as_themselves";
    if !root_and_tools_or_skip(test) || !nats_or_skip(test) {
        return;
    }
    let user = |name: &str| {
        format!(
            "{{ user: {name}, password: \"pw-{name}\", permissions: {{ publish: [\"f2b.{name}.>\", \
             \"$JS.API.INFO\", \"$JS.API.STREAM.INFO.F2B\", \"$JS.API.STREAM.CREATE.F2B\", \
             \"$JS.API.CONSUMER.CREATE.F2B\", \"$JS.API.CONSUMER.CREATE.F2B.>\", \
             \"$JS.API.CONSUMER.MSG.NEXT.F2B.>\", \"$JS.API.CONSUMER.DELETE.F2B.>\"], \
             subscribe: [\"_INBOX.>\"] }} }}"
        )
    };
    let mut net = FleetNet::new();
    let conf = format!(
        "authorization {{\n  users = [\n    {}\n    {}\n  ]\n}}\n",
        user("a"),
        user("b")
    );
    let nats = NatsServer::with_config(&net, FleetNet::SERVER, &conf);
    let servers = [nats.url()];
    let secrets = tempfile::tempdir().unwrap();
    let auth = |name: &str| {
        let f = secrets.path().join(name);
        std::fs::write(&f, format!("pw-{name}\n")).unwrap();
        format!("user = \"{name}\"\npassword_file = \"{}\"", f.display())
    };
    let a = Host::start(&mut net, "a", &config("a", &servers, "", &auth("a")));
    let b = Host::start(&mut net, "b", &config("b", &servers, "", &auth("b")));
    a.attacked_by(&["192.0.2.30".into()]);
    b.wait_has("192.0.2.30", Duration::from_secs(10));

    // User a publishing as b: the server refuses it (no acknowledgement from the stream).
    let spoof = net.core.run(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let client =
                async_nats::ConnectOptions::with_user_and_password("a".into(), "pw-a".into())
                    .connect(format!("{}:4222", FleetNet::SERVER))
                    .await
                    .unwrap();
            let js = async_nats::jetstream::new(client);
            let ack = js.publish("f2b.b.ssh.ban", b"{}".to_vec().into()).await;
            match ack {
                Ok(f) => tokio::time::timeout(Duration::from_secs(3), f)
                    .await
                    .map(|r| r.is_ok()),
                Err(_) => Ok(false),
            }
        })
    });
    assert!(
        !matches!(spoof, Ok(true)),
        "the server stored a's message as b's"
    );
}
