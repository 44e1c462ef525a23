//! nftables backend figures (not a pass/fail test): bulk bans, listing, single-ban latency.
//! Runs in a private network namespace; needs root (prints a message and exits otherwise).
//!
//! Run: `cargo bench --bench nft`

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use f2b::firewall::nft::{spawn_monitor, Nftables};
use f2b::firewall::{Change, Firewall, JailRules, PortRange, Protocol, Verdict};

const BULK: u32 = 100_000;
const SINGLES: usize = 1_000;

fn main() {
    // `cargo bench` passes `--bench`; under `cargo test` the figures would be debug-build noise.
    if !std::env::args().any(|a| a == "--bench") {
        println!("nft bench: run it with `cargo bench --bench nft`");
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("nft bench skipped: needs root (CAP_NET_ADMIN and a private network namespace)");
        return;
    }
    std::thread::spawn(|| {
        // SAFETY: unshare affects this thread only; the namespace dies with it.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            println!(
                "nft bench skipped: unshare(CLONE_NEWNET): {}",
                std::io::Error::last_os_error()
            );
            return;
        }
        run(false);
        println!();
        println!("-- again, with the change monitor subscribed (kernel builds notifications) --");
        let mon = spawn_monitor(|_| {}).expect("monitor");
        run(true);
        mon.stop();
    })
    .join()
    .unwrap();
}

fn ban(i: u32, base: u32, secs: u64) -> Change {
    Change::Ban {
        jail: "sshd".into(),
        net: std::net::IpAddr::from(Ipv4Addr::from(base + i)).into(),
        timeout: Some(Duration::from_secs(secs)),
    }
}

/// Bans of `n` addresses from `base` that end at `end`, sent as the engine sends them: with
/// the time left until their end.
fn bans(n: u32, base: u32, end: Instant) -> Vec<Change> {
    let left = end.saturating_duration_since(Instant::now());
    (0..n)
        .map(|i| Change::Ban {
            jail: "sshd".into(),
            net: std::net::IpAddr::from(Ipv4Addr::from(base + i)).into(),
            timeout: Some(left),
        })
        .collect()
}

/// Applies `changes`; every one must be enforced.
fn enforce(fw: &mut Nftables, changes: &[Change]) {
    let applied = fw.apply(changes).unwrap();
    assert!(applied.is_complete(), "refused: {:?}", applied.refused);
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn run(monitor: bool) {
    let mut fw = Nftables::new().expect("nftables");
    let jails = [JailRules {
        name: "sshd".into(),
        ports: vec![PortRange {
            first: 22,
            last: 22,
        }],
        protocol: Protocol::Tcp,
        verdict: Verdict::Drop,
    }];
    fw.teardown().unwrap();
    fw.setup(&jails).unwrap();

    let end = Instant::now() + Duration::from_secs(3600);
    let bulk = bans(BULK, 0x0a00_0000, end);
    let t = Instant::now();
    enforce(&mut fw, &bulk);
    let add = t.elapsed();
    println!("{BULK} IPv4 bans with timeouts, one apply (one transaction): {add:?}");

    let t = Instant::now();
    let n = fw.list().unwrap().len();
    println!("list() of {n} elements: {:?}", t.elapsed());
    assert_eq!(n, BULK as usize);

    // What a restart's restore does when the kernel still holds the bans (same end times):
    // nothing to send.
    let t = Instant::now();
    enforce(&mut fw, &bans(BULK, 0x0a00_0000, end));
    println!(
        "the same {BULK} bans again (already enforced, nothing sent): {:?}",
        t.elapsed()
    );

    let t = Instant::now();
    enforce(
        &mut fw,
        &bans(BULK, 0x0a00_0000, end + Duration::from_secs(3600)),
    );
    println!(
        "re-ban of all {BULK} with another timeout (delete + add = {} element operations): {:?}",
        2 * BULK,
        t.elapsed()
    );

    let t = Instant::now();
    let unbans: Vec<Change> = (0..BULK)
        .map(|i| Change::Unban {
            jail: "sshd".into(),
            net: std::net::IpAddr::from(Ipv4Addr::from(0x0a00_0000 + i)).into(),
        })
        .collect();
    enforce(&mut fw, &unbans);
    println!("unban of all {BULK}: {:?}", t.elapsed());

    let t = Instant::now();
    for chunk in bulk.chunks(1000) {
        enforce(&mut fw, chunk);
    }
    println!("{BULK} bans as 100 applies of 1,000: {:?}", t.elapsed());
    enforce(&mut fw, &unbans);

    // Single-element applies: new addresses, then re-bans of present ones.
    let mut lat = Vec::with_capacity(SINGLES);
    for i in 0..SINGLES as u32 {
        let c = [ban(i, 0xc0a8_0000, 600)];
        let t = Instant::now();
        enforce(&mut fw, &c);
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "single ban (new element), {SINGLES} applies: p50 {:?}  p99 {:?}  max {:?}",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat[lat.len() - 1]
    );
    let mut lat = Vec::with_capacity(SINGLES);
    for i in 0..SINGLES as u32 {
        let c = [ban(i, 0xc0a8_0000, 900)];
        let t = Instant::now();
        enforce(&mut fw, &c);
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "single re-ban (delete + add), {SINGLES} applies: p50 {:?}  p99 {:?}  max {:?}",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat[lat.len() - 1]
    );
    assert_eq!(fw.retries(), 0);
    if !monitor {
        fw.teardown().unwrap();
    }
}
