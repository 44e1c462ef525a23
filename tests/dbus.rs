//! The D-Bus control plane end to end: the real `f2bd` (dry-run firewall, a real journal made
//! with systemd-journal-remote) on a private, system-like bus (dbus-daemon with the default-deny
//! policy of the system bus plus `dbus/org.f2b.conf`), driven by the real `f2b` CLI, `busctl`
//! and `dbus-send`, as root and as uid 65534 (`setpriv`), with polkitd in a private mount
//! namespace for the polkit cases.
//!
//! Most tests need root (only root may own `org.f2b`, and `setpriv` switches users); without
//! root they print why they are skipped and pass.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command as Proc, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::bus::busctl;
use common::wait::poll_for;
use common::{
    chmod, fail, fixtures, is_root, repo, wait_for, which, F2bd as Daemon, PrivateBus, S,
};
use f2b::dbus::proxy::Manager1Proxy;
use f2b::dbus::BusSpec;
use f2b::engine::now_us;

const NOBODY: &str = "65534";
const F2BD: &str = env!("CARGO_BIN_EXE_f2bd");
const F2B: &str = env!("CARGO_BIN_EXE_f2b");

/// Skip (print why, return) unless the bus tools are there.
macro_rules! require_bus_tools {
    () => {
        for tool in ["dbus-daemon", "busctl", "dbus-send", "setpriv"] {
            if which(tool).is_none() {
                eprintln!("SKIP: needs {tool} (apt install dbus systemd util-linux)");
                return;
            }
        }
        if !Path::new(f2b::source::export::JOURNAL_REMOTE).exists() {
            eprintln!("SKIP: needs systemd-journal-remote (apt install systemd-journal-remote)");
            return;
        }
    };
}

/// Skip (print why, return) unless root and the bus tools are there.
macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("SKIP: needs root (to own org.f2b and to call as another user)");
            return;
        }
        require_bus_tools!();
    };
}

// ---------------------------------------------------------------------------------------------
// A private system-like bus
// ---------------------------------------------------------------------------------------------

impl PrivateBus {
    /// With polkit's bus policy too, so that polkitd may own its name.
    fn start_for_polkit() -> PrivateBus {
        Self::start_with(&[Path::new(Polkit::BUS_POLICY)])
    }
}

/// `busctl --address=ADDRESS ARGS` as uid/gid 65534 (nobody).
fn busctl_as_nobody(address: &str, args: &[&str]) -> Output {
    Proc::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            "busctl",
            &format!("--address={address}"),
        ])
        .args(args)
        .output()
        .unwrap()
}

/// `dbus-send --print-reply` as nobody: unlike busctl it prints the name of an error.
fn dbus_send_as_nobody(address: &str, path: &str, method: &str, args: &[&str]) -> Output {
    Proc::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            "dbus-send",
            &format!("--bus={address}"),
            "--print-reply",
            "--dest=org.f2b",
            path,
            method,
        ])
        .args(args)
        .output()
        .unwrap()
}

/// The message of `org.f2b.Error.NotAuthorized` as busctl shows it.
const NOT_AUTHORIZED: &str = "is not authorized for org.f2b.manage";

/// polkitd on a private bus, in a private mount namespace whose polkit actions are
/// `dbus/org.f2b.policy` and whose only rule is `rules`. Killed on drop.
struct Polkit {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Polkit {
    const POLKITD: &str = "/usr/lib/polkit-1/polkitd";
    const BUS_POLICY: &str = "/usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf";

    fn available() -> bool {
        Path::new(Self::POLKITD).exists()
            && Path::new(Self::BUS_POLICY).exists()
            && which("unshare").is_some()
    }

    fn start(bus_address: &str, rules: &str) -> Polkit {
        let dir = tempfile::tempdir().unwrap();
        chmod(dir.path(), 0o755);
        for d in ["actions", "rules", "empty"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
            chmod(&dir.path().join(d), 0o755);
        }
        std::fs::copy(
            repo().join("dbus/org.f2b.policy"),
            dir.path().join("actions/org.f2b.policy"),
        )
        .unwrap();
        std::fs::write(dir.path().join("rules/10-f2b-test.rules"), rules).unwrap();
        chmod(&dir.path().join("rules/10-f2b-test.rules"), 0o644);
        let d = dir.path().display();
        let script = format!(
            "mount --bind {d}/actions /usr/share/polkit-1/actions && \
             mount --bind {d}/rules /etc/polkit-1/rules.d && \
             mount --bind {d}/empty /usr/share/polkit-1/rules.d && \
             exec {}",
            Self::POLKITD
        );
        let child = Proc::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .env("DBUS_SYSTEM_BUS_ADDRESS", bus_address)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let p = Polkit { child, _dir: dir };
        wait_for(Duration::from_secs(10), "polkitd to take its name", || {
            stdout(&busctl(bus_address, &["list", "--acquired"]))
                .contains("org.freedesktop.PolicyKit1")
        });
        p
    }
}

impl Drop for Polkit {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A polkit rule: uid 65534 (nobody) may manage f2b, nobody else gets a rule.
const NOBODY_MAY_MANAGE: &str = r#"polkit.addRule(function(action, subject) {
    if (action.id == "org.f2b.manage" && subject.user == "nobody")
        return polkit.Result.YES;
});"#;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn ok(o: &Output) -> String {
    assert!(o.status.success(), "failed: {}{}", stdout(o), stderr(o));
    stdout(o)
}

#[track_caller]
fn refused(o: &Output, error: &str) {
    assert!(!o.status.success(), "unexpectedly succeeded: {}", stdout(o));
    let e = stderr(o);
    assert!(e.contains(error), "expected {error}, got: {e}");
}

// ---------------------------------------------------------------------------------------------
// The real daemon and CLI
// ---------------------------------------------------------------------------------------------

/// Two jails on the test filters; bans last an hour unless a test says otherwise.
const CONFIG: &str = r#"
[defaults]
ignoreself = false
ignoreip = []
[jail.ssh]
enabled = true
filter = "testssh"
maxretry = 3
findtime = "10m"
bantime = "1h"
[jail.web]
enabled = true
filter = "testweb"
maxretry = 2
bantime = "1h"
"#;

/// The `f2b` CLI on the bus `address`, as root.
fn f2b(address: &str, args: &[&str]) -> Output {
    Proc::new(F2B)
        .arg(args[0])
        .args(["--bus", address])
        .args(&args[1..])
        .output()
        .unwrap()
}

/// The `f2b` CLI as uid/gid 65534.
fn f2b_as_nobody(address: &str, args: &[&str]) -> Output {
    Proc::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            F2B,
            args[0],
            "--bus",
            address,
        ])
        .args(&args[1..])
        .output()
        .unwrap()
}

#[track_caller]
fn exit_code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(o)).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

/// The active bans as (jail, address), through the CLI.
fn bans(address: &str) -> Vec<(String, String)> {
    json(&f2b(address, &["bans", "--json"]))
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["jail"].as_str().unwrap().to_string(),
                b["address"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn get_property(address: &str, path: &str, iface: &str, prop: &str) -> String {
    ok(&busctl_as_nobody(
        address,
        &["get-property", "org.f2b", path, iface, prop],
    ))
    .trim()
    .to_string()
}

/// `count` failures of `ip` against ssh, now.
fn ssh_failures(ip: &str, count: usize) -> Vec<f2b::source::export::ExportEntry> {
    let t = now_us();
    (0..count).map(|i| fail(t + i as u64, ip)).collect()
}

// ---------------------------------------------------------------------------------------------
// Signals, recorded as they arrive
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Sig {
    Banned(String, String, u64),
    Unbanned(String, String),
    /// Object path and the changed properties (values as text).
    Props(String, BTreeMap<String, String>),
}

/// Subscribes to every signal of `org.f2b` on its own thread and runtime, recording each with
/// its arrival time.
struct Subscriber {
    seen: Arc<Mutex<Vec<(Instant, Sig)>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Subscriber {
    fn start(address: &str) -> Subscriber {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let address = address.to_string();
        let record = seen.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let conn = BusSpec::Address(address).connect().await.unwrap();
                let rule = zbus::MatchRule::builder()
                    .msg_type(zbus::message::Type::Signal)
                    .sender("org.f2b")
                    .build()
                    .unwrap();
                let mut stream = zbus::MessageStream::for_match_rule(rule, &conn, None)
                    .await
                    .unwrap();
                ready_tx.send(()).unwrap();
                loop {
                    let next =
                        std::future::poll_fn(|cx| std::pin::Pin::new(&mut stream).poll_next(cx));
                    let msg = tokio::select! {
                        m = next => m,
                        _ = &mut stop_rx => break,
                    };
                    let Some(Ok(msg)) = msg else { break };
                    if let Some(sig) = decode(&msg) {
                        record.lock().unwrap().push((Instant::now(), sig));
                    }
                }
            });
        });
        ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        Subscriber {
            seen,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    fn seen(&self) -> Vec<(Instant, Sig)> {
        self.seen.lock().unwrap().clone()
    }

    fn signals(&self) -> Vec<Sig> {
        self.seen().into_iter().map(|(_, s)| s).collect()
    }

    /// Wait until a recorded signal satisfies `f`.
    #[track_caller]
    fn wait(&self, limit: Duration, what: &str, f: impl Fn(&Sig) -> bool) {
        wait_for(limit, what, || self.signals().iter().any(&f));
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

use zbus::export::futures_core::Stream;

fn decode(msg: &zbus::Message) -> Option<Sig> {
    let hdr = msg.header();
    let member = hdr.member()?.to_string();
    let path = hdr.path()?.to_string();
    let body = msg.body();
    match member.as_str() {
        "Banned" => {
            let (j, a, t) = body.deserialize::<(String, String, u64)>().ok()?;
            Some(Sig::Banned(j, a, t))
        }
        "Unbanned" => {
            let (j, a) = body.deserialize::<(String, String)>().ok()?;
            Some(Sig::Unbanned(j, a))
        }
        "PropertiesChanged" => {
            let (_iface, changed, _inv) = body
                .deserialize::<(
                    String,
                    std::collections::HashMap<String, zbus::OwnedVariant>,
                    Vec<String>,
                )>()
                .ok()?;
            Some(Sig::Props(
                path,
                changed
                    .into_iter()
                    .map(|(k, v)| (k, variant_text(v)))
                    .collect(),
            ))
        }
        _ => None,
    }
}

/// A property value as text: numbers and booleans plainly, strings as is, lists joined by
/// commas.
fn variant_text(v: zbus::OwnedVariant) -> String {
    let c = || v.try_clone().unwrap();
    if let Ok(x) = u32::try_from(c()) {
        return x.to_string();
    }
    if let Ok(x) = u64::try_from(c()) {
        return x.to_string();
    }
    if let Ok(x) = i64::try_from(c()) {
        return x.to_string();
    }
    if let Ok(x) = bool::try_from(c()) {
        return x.to_string();
    }
    if let Ok(x) = String::try_from(c()) {
        return x;
    }
    if let Ok(x) = Vec::<String>::try_from(c()) {
        return x.join(",");
    }
    format!("{v:?}")
}

// ---------------------------------------------------------------------------------------------
// Introspection XML
// ---------------------------------------------------------------------------------------------

/// The `<interface name="org.f2b.…">` elements of an introspection document, normalized: no
/// comments, whitespace ignored, attributes sorted, each member (method, signal, property) as
/// one string with its args in order, members sorted.
fn f2b_interfaces(xml: &str) -> BTreeMap<String, Vec<String>> {
    let comment = regex::Regex::new(r"(?s)<!--.*?-->").unwrap();
    let xml = comment.replace_all(xml, "");
    let tag = regex::Regex::new(
        r#"(?s)<(/?)([A-Za-z_:]+)((?:\s+[^\s=>/]+\s*=\s*(?:'[^']*'|"[^"]*"))*)\s*(/?)>"#,
    )
    .unwrap();
    let attr = regex::Regex::new(r#"([^\s=]+)\s*=\s*(?:'([^']*)'|"([^"]*)")"#).unwrap();
    let mut out = BTreeMap::new();
    // (interface name, finished members, member being read)
    let mut current: Option<(String, Vec<String>, String)> = None;
    for c in tag.captures_iter(&xml) {
        let closing = !c[1].is_empty();
        let name = &c[2];
        let mut attrs: Vec<String> = attr
            .captures_iter(&c[3])
            .map(|a| {
                let v = a.get(2).or(a.get(3)).map_or("", |m| m.as_str());
                format!("{}={v}", &a[1])
            })
            .collect();
        attrs.sort();
        let self_closing = !c[4].is_empty();
        match (name, closing) {
            ("interface", false) => {
                let iname = attrs
                    .iter()
                    .find_map(|a| a.strip_prefix("name="))
                    .unwrap_or("")
                    .to_string();
                if iname.starts_with("org.f2b.") && !self_closing {
                    current = Some((iname, Vec::new(), String::new()));
                }
            }
            ("interface", true) => {
                if let Some((n, mut members, _)) = current.take() {
                    members.sort();
                    out.insert(n, members);
                }
            }
            _ => {
                let Some((_, members, member)) = current.as_mut() else {
                    continue;
                };
                if closing {
                    member.push_str(&format!("</{name}>"));
                } else {
                    member.push_str(&format!("<{name} {}>", attrs.join(" ")));
                    if self_closing {
                        member.push_str(&format!("</{name}>"));
                    }
                }
                let is_member = matches!(name, "method" | "signal" | "property");
                if is_member && (closing || self_closing) {
                    members.push(std::mem::take(member));
                }
            }
        }
    }
    out
}

fn documented_interfaces() -> BTreeMap<String, Vec<String>> {
    let xml = std::fs::read_to_string(repo().join("dbus/org.f2b.xml")).unwrap();
    let ifaces = f2b_interfaces(&xml);
    assert_eq!(
        ifaces.keys().collect::<Vec<_>>(),
        ["org.f2b.Jail1", "org.f2b.Manager1"],
        "dbus/org.f2b.xml must document both interfaces"
    );
    ifaces
}

/// The served interfaces, from `Introspect` on the manager and a jail object.
fn served_interfaces(address: &str, jail_path: &str) -> BTreeMap<String, Vec<String>> {
    let mut served = BTreeMap::new();
    for path in ["/org/f2b", jail_path] {
        let o = busctl_as_nobody(address, &["introspect", "--xml-interface", "org.f2b", path]);
        let xml = ok(&o);
        if std::env::var_os("F2B_PRINT_XML").is_some() {
            println!("{xml}");
        }
        served.extend(f2b_interfaces(&xml));
    }
    served
}

#[test]
fn xml_normalizer_sees_structure() {
    let a = f2b_interfaces(
        r#"<node><interface name="org.f2b.X"><!-- doc --><method name="M">
        <arg type="s" name="a" direction="in"/></method></interface>
        <interface name="org.other"><method name="N"/></interface></node>"#,
    );
    let b = f2b_interfaces(
        r#"<node>
  <interface name="org.f2b.X">
    <method name="M"><arg direction="in" name="a" type="s"></arg></method>
  </interface></node>"#,
    );
    assert_eq!(a, b);
    assert_eq!(a.len(), 1);
    assert_eq!(
        a["org.f2b.X"],
        ["<method name=M><arg direction=in name=a type=s></arg></method>"]
    );
    // Members in another order are the same interface; args in another order are not.
    let c = f2b_interfaces(
        r#"<interface name="org.f2b.Y"><property name="B" type="s" access="read"/>
           <method name="A"><arg name="x" type="s"/><arg name="y" type="u"/></method></interface>"#,
    );
    let d = f2b_interfaces(
        r#"<interface name="org.f2b.Y"><method name="A"><arg name="x" type="s"/>
           <arg name="y" type="u"/></method><property name="B" type="s" access="read"/></interface>"#,
    );
    let e = f2b_interfaces(
        r#"<interface name="org.f2b.Y"><method name="A"><arg name="y" type="u"/>
           <arg name="x" type="s"/></method><property name="B" type="s" access="read"/></interface>"#,
    );
    assert_eq!(c, d);
    assert_ne!(c, e);
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

#[test]
fn introspection_matches_documented_xml() {
    require_root!();
    let bus = PrivateBus::start();
    let daemon = Daemon::start(&bus, CONFIG);
    let served = served_interfaces(&bus.address, "/org/f2b/jail/ssh");
    for (name, doc) in &documented_interfaces() {
        let got = served
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not served"));
        assert_eq!(got, doc, "served {name} differs from dbus/org.f2b.xml");
    }
    daemon.stop();
}

#[test]
fn anyone_reads_but_changes_need_root_or_polkit() {
    require_root!();
    let bus = PrivateBus::start();
    let daemon = Daemon::start(&bus, CONFIG);
    let a = bus.address.as_str();
    ok(&f2b(a, &["ban", "ssh", "203.0.113.9"]));
    let before = bans(a);
    assert_eq!(before, [("ssh".into(), "203.0.113.9".into())]);

    // Reads: busctl and the CLI, as nobody.
    let m = ["org.f2b", "/org/f2b", "org.f2b.Manager1"];
    let j = ["org.f2b", "/org/f2b/jail/ssh", "org.f2b.Jail1"];
    let call = |t: &[&str; 3], rest: &[&str]| -> Vec<String> {
        ["call"]
            .iter()
            .chain(t.iter())
            .chain(rest.iter())
            .map(|s| s.to_string())
            .collect()
    };
    assert_eq!(
        ok(&busctl_as_nobody(a, &strs(&call(&m, &["ListJails"])))),
        "as 2 \"ssh\" \"web\"\n"
    );
    assert!(ok(&busctl_as_nobody(
        a,
        &strs(&call(&m, &["GetBans", "suu", "", "0", "100"]))
    ))
    .contains("\"203.0.113.9\""));
    assert!(ok(&busctl_as_nobody(
        a,
        &strs(&call(&m, &["GetHistory", "s", "203.0.113.9"]))
    ))
    .contains("\"ssh\""));
    ok(&busctl_as_nobody(
        a,
        &strs(&call(&j, &["ListBans", "uu", "0", "10"])),
    ));
    assert_eq!(get_property(a, j[1], j[2], "MaxRetry"), "u 3");
    assert_eq!(get_property(a, m[1], m[2], "Jails"), "as 2 \"ssh\" \"web\"");
    ok(&busctl_as_nobody(
        a,
        &["introspect", "org.f2b", "/org/f2b/jail/web"],
    ));
    let status = ok(&f2b_as_nobody(a, &["status"]));
    assert!(status.contains("ssh") && status.contains("web"), "{status}");
    assert_eq!(
        json(&f2b_as_nobody(a, &["bans", "--json"]))
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Every change is refused: busctl shows the message, dbus-send the error name.
    refused(
        &dbus_send_as_nobody(a, "/org/f2b", "org.f2b.Manager1.UnbanAll", &["string:"]),
        "org.f2b.Error.NotAuthorized",
    );
    for args in [
        call(&m, &["Ban", "sst", "ssh", "198.51.100.1", "0"]),
        call(
            &m,
            &[
                "BanWithOptions",
                "ssta{sv}",
                "ssh",
                "198.51.100.0/24",
                "0",
                "0",
            ],
        ),
        call(&m, &["Unban", "ss", "", "203.0.113.9"]),
        call(&m, &["UnbanAll", "s", ""]),
        call(&m, &["Reload"]),
        call(&j, &["Ban", "st", "198.51.100.1", "60"]),
        call(&j, &["Unban", "s", "203.0.113.9"]),
        call(&j, &["Stop"]),
        call(
            &["org.f2b", "/org/f2b/jail/web", "org.f2b.Jail1"],
            &["Start"],
        ),
    ] {
        refused(&busctl_as_nobody(a, &strs(&args)), NOT_AUTHORIZED);
    }
    for (prop, sig, val) in [
        ("MaxRetry", "u", "1"),
        ("FindTime", "t", "60"),
        ("BanTime", "x", "-1"),
    ] {
        refused(
            &busctl_as_nobody(a, &["--", "set-property", j[0], j[1], j[2], prop, sig, val]),
            NOT_AUTHORIZED,
        );
    }
    // And through the CLI, with the advice.
    for args in [
        &["ban", "ssh", "198.51.100.1"][..],
        &["unban", "203.0.113.9"],
        &["unban", "--all"],
        &["reload"],
        &["stop", "ssh"],
        &["set", "ssh", "maxretry", "1"],
    ] {
        let o = f2b_as_nobody(a, args);
        assert_eq!(
            exit_code(&o),
            i32::from(f2b::cli::EXIT_DENIED),
            "{args:?}: {}",
            stderr(&o)
        );
        let e = stderr(&o);
        assert!(e.contains("permission denied: uid 65534"), "{e}");
        assert!(
            e.contains("run as root or get org.f2b.manage through polkit"),
            "{e}"
        );
    }
    // Nothing changed.
    assert_eq!(bans(a), before);
    assert_eq!(get_property(a, j[1], j[2], "MaxRetry"), "u 3");
    assert_eq!(get_property(a, j[1], j[2], "BanTime"), "x 3600");
    assert_eq!(get_property(a, j[1], j[2], "Enabled"), "b true");
    assert_eq!(get_property(a, m[1], m[2], "Jails"), "as 2 \"ssh\" \"web\"");
    daemon.stop();
}

#[test]
fn cli_drives_the_daemon() {
    require_root!();
    let bus = PrivateBus::start();
    let daemon = Daemon::start(&bus, CONFIG);
    let a = bus.address.as_str();

    let out = ok(&f2b(a, &["status"]));
    assert!(out.starts_with("JAIL"), "{out}");
    assert!(out.contains("ssh") && out.contains("testssh"), "{out}");

    let t = now_us();
    let out = ok(&f2b(a, &["ban", "ssh", "203.0.113.9", "--for", "2h"]));
    assert!(out.starts_with("banned 203.0.113.9 in ssh until "), "{out}");
    ok(&f2b(a, &["ban", "web", "2001:db8:1::/48"]));
    let list = json(&f2b(a, &["bans", "--json"]));
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let ssh = list.iter().find(|b| b["jail"] == "ssh").unwrap();
    assert_eq!(ssh["address"], "203.0.113.9");
    let end = ssh["end_usec"].as_u64().unwrap();
    assert!(end >= t + 7200 * S && end < now_us() + 7200 * S, "{ssh}");
    assert_eq!(
        list.iter().find(|b| b["jail"] == "web").unwrap()["address"],
        "2001:db8:1::/48"
    );
    let table = ok(&f2b(a, &["bans", "web"]));
    assert!(
        table.contains("2001:db8:1::/48") && !table.contains("203.0.113.9"),
        "{table}"
    );

    let st = json(&f2b(a, &["status", "ssh", "--json"]));
    assert_eq!(st["name"], "ssh");
    assert_eq!(st["max_retry"], 3);
    assert_eq!(st["currently_banned"], 1);
    assert_eq!(st["bans"][0]["address"], "203.0.113.9");
    let text = ok(&f2b(a, &["status", "ssh"]));
    assert!(
        text.contains("Max retry:") && text.contains("203.0.113.9"),
        "{text}"
    );

    let hist = json(&f2b(a, &["history", "203.0.113.9", "--json"]));
    assert_eq!(hist[0]["jail"], "ssh");

    ok(&f2b(a, &["set", "ssh", "maxretry", "7"]));
    ok(&f2b(a, &["set", "ssh", "findtime", "30m"]));
    ok(&f2b(a, &["set", "ssh", "bantime", "forever"]));
    let p = "/org/f2b/jail/ssh";
    assert_eq!(get_property(a, p, "org.f2b.Jail1", "MaxRetry"), "u 7");
    assert_eq!(get_property(a, p, "org.f2b.Jail1", "FindTime"), "t 1800");
    assert_eq!(get_property(a, p, "org.f2b.Jail1", "BanTime"), "x -1");

    ok(&f2b(a, &["stop", "web"]));
    let web_path = "/org/f2b/jail/web";
    assert_eq!(
        get_property(a, web_path, "org.f2b.Jail1", "Enabled"),
        "b false"
    );
    assert_eq!(bans(a), [("ssh".into(), "203.0.113.9".into())]);
    ok(&f2b(a, &["start", "web"]));
    assert_eq!(
        get_property(a, web_path, "org.f2b.Jail1", "Enabled"),
        "b true"
    );

    let out = ok(&f2b(a, &["unban", "ssh", "203.0.113.9", "198.51.100.200"]));
    assert!(out.contains("unbanned 203.0.113.9 (1 ban lifted)"), "{out}");
    assert!(
        out.contains("198.51.100.200 was not banned in jail ssh"),
        "{out}"
    );
    // "was not banned in every jail" was the wording.
    let out = ok(&f2b(a, &["unban", "198.51.100.201"]));
    assert_eq!(out, "198.51.100.201 was not banned in any jail\n");
    assert!(bans(a).is_empty());
    ok(&f2b(a, &["ban", "ssh", "203.0.113.10"]));
    ok(&f2b(a, &["ban", "web", "203.0.113.11"]));
    let out = ok(&f2b(a, &["unban", "--all", "web"]));
    assert!(out.contains("lifted 1 ban in jail web"), "{out}");
    assert_eq!(bans(a), [("ssh".into(), "203.0.113.10".into())]);

    // Mistakes: a message that says what is wrong; exit 1 when f2bd refuses, 2 when the
    // command line does not parse.
    for (args, code, msg) in [
        (&["ban", "nope", "203.0.113.9"][..], 1, "no such jail"),
        (&["status", "nope"], 1, "no such jail"),
        (&["stop", "nope"], 1, "no such jail"),
        (&["ban", "ssh", "203.0.113"], 2, "not an IP address"),
        (&["ban", "ssh", "0.0.0.0/0"], 2, "prefix shorter than /8"),
        (&["ban", "ssh", "203.0.113.9", "--for", "soon"], 2, "--for"),
        (&["set", "ssh", "maxretry", "0"], 2, "1..=1000000"),
        (&["set", "ssh", "colour", "blue"], 2, "colour"),
    ] {
        let o = f2b(a, args);
        assert_eq!(exit_code(&o), code, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(msg), "{args:?}: {}", stderr(&o));
    }
    daemon.stop();
}

/// Issue 10.3: a manual ban of a prefix holding an ignored address is refused unless the caller
/// overrides explicitly (`f2b ban --force`, BanWithOptions force); a single ignored address is
/// refused even then, and a misspelt option is refused rather than ignored.
#[test]
fn a_manual_prefix_ban_over_an_ignored_address_needs_force() {
    require_root!();
    let bus = PrivateBus::start();
    let config = CONFIG.replace(
        "maxretry = 3\n",
        "maxretry = 3\nignoreip = [\"198.51.100.7\"]\n",
    );
    let daemon = Daemon::start(&bus, &config);
    let a = bus.address.as_str();

    let o = f2b(a, &["ban", "ssh", "198.51.100.0/24"]);
    assert_eq!(exit_code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    assert!(bans(a).is_empty());

    let o = f2b(a, &["ban", "ssh", "198.51.100.7", "--force"]);
    assert_eq!(exit_code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("ignoreip"), "{}", stderr(&o));

    let m = [
        "call",
        "org.f2b",
        "/org/f2b",
        "org.f2b.Manager1",
        "BanWithOptions",
    ];
    let busctl = |rest: &[&str]| {
        Proc::new("busctl")
            .arg(format!("--address={a}"))
            .args(m)
            .args(rest)
            .output()
            .unwrap()
    };
    refused(
        &busctl(&[
            "ssta{sv}",
            "ssh",
            "198.51.100.0/24",
            "0",
            "1",
            "forse",
            "b",
            "true",
        ]),
        "unknown option",
    );
    refused(
        &busctl(&[
            "ssta{sv}",
            "ssh",
            "198.51.100.0/24",
            "0",
            "1",
            "force",
            "u",
            "1",
        ]),
        "expected a boolean",
    );
    assert!(bans(a).is_empty());

    ok(&f2b(a, &["ban", "ssh", "198.51.100.0/24", "--force"]));
    assert_eq!(bans(a), [("ssh".into(), "198.51.100.0/24".into())]);
    ok(&busctl(&[
        "ssta{sv}",
        "web",
        "198.51.100.0/25",
        "60",
        "1",
        "force",
        "b",
        "true",
    ]));
    assert_eq!(bans(a).len(), 2);
    daemon.stop();
}

#[test]
fn cli_says_when_the_daemon_is_not_running() {
    require_bus_tools!();
    let bus = PrivateBus::start();
    for args in [&["status"][..], &["bans"], &["reload"], &["monitor"]] {
        let o = f2b(&bus.address, args);
        assert_eq!(
            exit_code(&o),
            i32::from(f2b::cli::EXIT_NOT_RUNNING),
            "{args:?}"
        );
        assert!(stderr(&o).contains("f2bd is not running"), "{}", stderr(&o));
    }
    let o = f2b("unix:path=/nonexistent/bus", &["status"]);
    assert_eq!(exit_code(&o), i32::from(f2b::cli::EXIT_NOT_RUNNING));
    assert!(stderr(&o).contains("cannot connect"), "{}", stderr(&o));
}

#[test]
fn journal_bans_become_signals_and_monitor_lines() {
    require_root!();
    let bus = PrivateBus::start();
    let daemon = Daemon::start(
        &bus,
        &CONFIG.replace(
            "bantime = \"1h\"\n[jail.web]",
            "bantime = \"2s\"\n[jail.web]",
        ),
    );
    let a = bus.address.as_str();
    let sub = Subscriber::start(a);
    // f2b monitor --json, ready once it says so on stderr.
    let mut monitor = Proc::new(F2B)
        .args(["monitor", "--bus", a, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(monitor.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("monitoring org.f2b"), "{line}");

    daemon.journal(ssh_failures("198.51.100.7", 3));
    sub.wait(Duration::from_secs(10), "Banned", |s| {
        matches!(s, Sig::Banned(j, a, until) if j == "ssh" && a == "198.51.100.7" && *until > 0)
    });
    sub.wait(
        Duration::from_secs(10),
        "Unbanned after 2 s",
        |s| matches!(s, Sig::Unbanned(j, a) if j == "ssh" && a == "198.51.100.7"),
    );
    // The counters follow (rate-limited, so give it the interval).
    sub.wait(Duration::from_secs(5), "TotalBanned = 1", |s| {
        matches!(s, Sig::Props(p, c) if p == "/org/f2b/jail/ssh"
            && c.get("TotalBanned").map(String::as_str) == Some("1"))
    });
    assert_eq!(
        get_property(a, "/org/f2b/jail/ssh", "org.f2b.Jail1", "TotalFailed"),
        "t 3"
    );

    // SIGINT (Ctrl-C) ends the monitor cleanly; it printed both events as JSON lines.
    // SAFETY: plain kill(2) of our own child.
    unsafe { libc::kill(monitor.id() as i32, libc::SIGINT) };
    let status = wait_child(&mut monitor, Duration::from_secs(5));
    assert!(status.success(), "monitor: {status}");
    let mut out = String::new();
    monitor
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let events: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "{out}");
    assert_eq!(events[0]["event"], "banned");
    assert_eq!(events[0]["address"], "198.51.100.7");
    assert_eq!(events[1]["event"], "unbanned");
    daemon.stop();
}

fn wait_child(c: &mut Child, limit: Duration) -> ExitStatus {
    poll_for(limit, || c.try_wait().unwrap()).unwrap_or_else(|| {
        let _ = c.kill();
        panic!("child did not exit within {limit:?}");
    })
}

#[test]
fn ban_storm_properties_changed_at_most_once_a_second() {
    require_root!();
    let bus = PrivateBus::start();
    let daemon = Daemon::start(&bus, CONFIG);
    let a = bus.address.as_str();
    let sub = Subscriber::start(a);
    let banned = || {
        sub.signals()
            .iter()
            .filter(|s| matches!(s, Sig::Banned(..)))
            .count()
    };
    // 600 attackers, 3 failures each, in three appends, each once the bans of the one before
    // were announced.
    let start = Instant::now();
    for round in 0..3u32 {
        let t = now_us();
        let mut entries = Vec::new();
        for i in 0..200u32 {
            let ip = format!("10.{round}.{}.{}", i / 250, i % 250 + 1);
            for k in 0..3 {
                entries.push(fail(t + (i * 3 + k) as u64, &ip));
            }
        }
        daemon.journal(entries);
        let want = 200 * (round as usize + 1);
        wait_for(
            Duration::from_secs(20),
            &format!("{want} Banned signals"),
            || banned() >= want,
        );
    }
    // The last, rate-limited PropertiesChanged: the jail's final count.
    sub.wait(
        Duration::from_secs(10),
        "PropertiesChanged with CurrentlyBanned = 600",
        |s| {
            matches!(s, Sig::Props(p, c) if p == "/org/f2b/jail/ssh"
                && c.get("CurrentlyBanned").map(String::as_str) == Some("600"))
        },
    );
    let elapsed = start.elapsed();
    let props: Vec<(Instant, BTreeMap<String, String>)> = sub
        .seen()
        .into_iter()
        .filter_map(|(t, s)| match s {
            Sig::Props(p, c) if p == "/org/f2b/jail/ssh" => Some((t, c)),
            _ => None,
        })
        .collect();
    assert!(!props.is_empty());
    assert!(
        props.len() as f64 <= elapsed.as_secs_f64() + 1.0,
        "{} PropertiesChanged in {elapsed:?}",
        props.len()
    );
    for w in props.windows(2) {
        assert!(
            w[1].0 - w[0].0 >= Duration::from_millis(900),
            "two PropertiesChanged {:?} apart",
            w[1].0 - w[0].0
        );
    }
    let last = &props.last().unwrap().1;
    assert_eq!(
        last.get("CurrentlyBanned").map(String::as_str),
        Some("600"),
        "{props:?}"
    );
    assert_eq!(banned(), 600);
    assert_eq!(
        get_property(a, "/org/f2b/jail/ssh", "org.f2b.Jail1", "CurrentlyBanned"),
        "u 600"
    );
    // The paged listing sees them all.
    assert_eq!(bans(a).len(), 600);
    daemon.stop();
}

#[test]
fn reload_keeps_the_running_config_on_error_and_follows_changes() {
    require_root!();
    let bus = PrivateBus::start();
    let daemon = Daemon::start(&bus, CONFIG);
    let a = bus.address.as_str();
    let sub = Subscriber::start(a);
    ok(&f2b(a, &["ban", "ssh", "203.0.113.9"]));

    // A broken drop-in value: refused with file:line, nothing changes.
    let broken =
        format!("{CONFIG}[jail.new-one]\nenabled = true\nfilter = \"testweb\"\nmaxretry = 0\n");
    let line = broken.lines().position(|l| l == "maxretry = 0").unwrap() + 1;
    std::fs::write(daemon.config(), &broken).unwrap();
    let o = f2b(a, &["reload"]);
    assert_eq!(exit_code(&o), i32::from(f2b::cli::EXIT_FAILURE));
    let e = stderr(&o);
    assert!(e.contains("the running configuration stays"), "{e}");
    assert!(e.contains(&format!("f2b.toml:{line}")), "{e}");
    assert_eq!(
        get_property(a, "/org/f2b", "org.f2b.Manager1", "Jails"),
        "as 2 \"ssh\" \"web\""
    );
    assert_eq!(bans(a), [("ssh".into(), "203.0.113.9".into())]);

    // Fixed, and web removed: objects follow, Jails changes.
    let fixed = broken
        .replace("maxretry = 0", "maxretry = 4")
        .replace("[jail.web]\nenabled = true", "[jail.web]\nenabled = false");
    let fixed = fixed.replace(
        "[jail.web]\nenabled = false\nfilter = \"testweb\"\nmaxretry = 2\nbantime = \"1h\"\n",
        "",
    );
    std::fs::write(daemon.config(), &fixed).unwrap();
    let out = ok(&f2b(a, &["reload"]));
    assert!(out.contains("added: new-one"), "{out}");
    assert!(out.contains("removed: web"), "{out}");
    // A jail name with a dash: escaped like systemd does.
    assert_eq!(
        get_property(a, "/org/f2b/jail/new_2done", "org.f2b.Jail1", "Name"),
        "s \"new-one\""
    );
    assert_eq!(
        get_property(a, "/org/f2b/jail/new_2done", "org.f2b.Jail1", "MaxRetry"),
        "u 4"
    );
    let gone = busctl_as_nobody(
        a,
        &[
            "get-property",
            "org.f2b",
            "/org/f2b/jail/web",
            "org.f2b.Jail1",
            "Name",
        ],
    );
    assert!(!gone.status.success(), "web is still served");
    sub.wait(Duration::from_secs(5), "Jails changed", |s| {
        matches!(s, Sig::Props(p, c) if p == "/org/f2b"
            && c.get("Jails").map(String::as_str) == Some("new-one,ssh"))
    });
    assert_eq!(bans(a), [("ssh".into(), "203.0.113.9".into())]);
    daemon.stop();
}

#[test]
fn paging_and_argument_checks() {
    require_root!();
    let bus = PrivateBus::start();
    let daemon = Daemon::start(&bus, CONFIG);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let conn = bus.spec().connect().await.unwrap();
        let m = Manager1Proxy::builder(&conn)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .unwrap();
        for i in 0..25 {
            m.ban("ssh", &format!("198.51.100.{i}"), 60).await.unwrap();
        }
        m.ban("web", "2001:db8::/64", 0).await.unwrap();
        let mut all = Vec::new();
        loop {
            let (page, total) = m.get_bans("", all.len() as u32, 10).await.unwrap();
            assert_eq!(total, 26);
            assert!(page.len() <= 10);
            if page.is_empty() {
                break;
            }
            all.extend(page);
        }
        assert_eq!(all.len(), 26);
        assert!(all[..25].iter().all(|b| b.jail == "ssh"));
        assert_eq!(all[25].address, "2001:db8::/64");
        assert_eq!(all[25].end_usec - all[25].start_usec, 3600 * S);
        let (page, total) = m.get_bans("web", 0, 0).await.unwrap();
        assert_eq!((page.len(), total), (0, 1));

        use f2b::dbus::Error as E;
        let e = m.get_bans("", 0, 10_001).await.unwrap_err();
        assert!(matches!(e, E::InvalidArgument(_)), "{e:?}");
        for bad in ["1.2.3", "0.0.0.0/0", "203.0.113.9/24", "::", "x"] {
            let e = m.ban("ssh", bad, 0).await.unwrap_err();
            assert!(matches!(e, E::InvalidAddress(_)), "{bad}: {e:?}");
        }
        let e = m.ban("ssh", "203.0.113.9", u64::MAX).await.unwrap_err();
        assert!(matches!(e, E::InvalidArgument(_)), "{e:?}");
        let e = m.ban("nope", "203.0.113.9", 0).await.unwrap_err();
        assert!(matches!(e, E::NoSuchJail(_)), "{e:?}");
        let e = m.ban("../x", "203.0.113.9", 0).await.unwrap_err();
        assert!(matches!(e, E::NoSuchJail(_)), "{e:?}");
        let e = m.get_history("203.0.113.0/24").await.unwrap_err();
        assert!(matches!(e, E::InvalidAddress(_)), "{e:?}");
        let e = m.unban_all("nope").await.unwrap_err();
        assert!(matches!(e, E::NoSuchJail(_)), "{e:?}");
    });
    assert_eq!(bans(&bus.address).len(), 26);
    daemon.stop();
}

#[test]
fn polkit_decides_for_the_caller() {
    require_root!();
    if !Polkit::available() {
        eprintln!("SKIP: needs polkitd (apt install polkitd) and unshare");
        return;
    }
    let bus = PrivateBus::start_for_polkit();
    let _polkit = Polkit::start(&bus.address, NOBODY_MAY_MANAGE);
    let daemon = Daemon::start(&bus, CONFIG);
    let a = bus.address.as_str();
    // nobody has a rule granting org.f2b.manage.
    ok(&f2b_as_nobody(a, &["ban", "ssh", "203.0.113.9"]));
    ok(&busctl_as_nobody(
        a,
        &[
            "--",
            "set-property",
            "org.f2b",
            "/org/f2b/jail/ssh",
            "org.f2b.Jail1",
            "MaxRetry",
            "u",
            "9",
        ],
    ));
    // daemon (uid 1) has none: polkit's default is auth_admin, and no agent answers.
    let o = Proc::new("setpriv")
        .args(["--reuid=1", "--regid=1", "--clear-groups", F2B])
        .args(["unban", "--all", "--bus", a])
        .output()
        .unwrap();
    assert_eq!(
        exit_code(&o),
        i32::from(f2b::cli::EXIT_DENIED),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("authentication is required"),
        "{}",
        stderr(&o)
    );
    assert_eq!(bans(a), [("ssh".into(), "203.0.113.9".into())]);
    assert_eq!(
        get_property(a, "/org/f2b/jail/ssh", "org.f2b.Jail1", "MaxRetry"),
        "u 9"
    );
    daemon.stop();
}

#[test]
fn only_one_daemon_and_only_root_own_the_name() {
    require_root!();
    let bus = PrivateBus::start();
    let daemon = Daemon::start(&bus, CONFIG);
    let second = |uid: Option<&str>| -> Output {
        let mut cmd = match uid {
            Some(u) => {
                let mut c = Proc::new("setpriv");
                c.args([
                    &format!("--reuid={u}"),
                    &format!("--regid={u}"),
                    "--clear-groups",
                    F2BD,
                ]);
                c
            }
            None => Proc::new(F2BD),
        };
        cmd.args([
            "--bus",
            &bus.address,
            "--firewall",
            "none",
            "--log",
            "stderr",
        ])
        .args(["--ephemeral", "--no-system-filters", "--filter-dir"])
        .arg(fixtures())
        .arg("--config")
        .arg(daemon.config())
        .arg("--journal-dir")
        .arg(daemon.dir.path().join("journal"))
        .stdin(Stdio::null());
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_child(&mut child, Duration::from_secs(15));
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        Output {
            status,
            stdout: vec![],
            stderr: err.into_bytes(),
        }
    };
    let o = second(None);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("org.f2b is already owned"),
        "{}",
        stderr(&o)
    );
    // Readable by nobody, so that the refusal is the bus policy's.
    chmod(daemon.dir.path(), 0o755);
    chmod(&daemon.dir.path().join("journal"), 0o755);
    for f in std::fs::read_dir(daemon.dir.path().join("journal")).unwrap() {
        chmod(&f.unwrap().path(), 0o644);
    }
    chmod(&daemon.config(), 0o644);
    let o = second(Some(NOBODY));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("not permitted to own org.f2b"),
        "{}",
        stderr(&o)
    );
    // The first one is unharmed.
    ok(&f2b(&bus.address, &["status"]));
    daemon.stop();
}

/// Issue 10: `f2b status JAIL` did not show what is enforced, and the FAILED column counted
/// addresses, not failures. What the jail enforces is on org.f2b.Jail1 (and in the CLI).
#[test]
fn jail_properties_show_what_is_enforced_and_failures_are_counted() {
    require_root!();
    let bus = PrivateBus::start();
    let config = CONFIG.replace(
        "[jail.ssh]\n",
        "[jail.ssh]\nports = [22, \"2222-2223\"]\nprotocol = \"tcp\"\naction = \"reject\"\n\
         ignoreip = [\"192.0.2.0/24\", \"::ffff:198.51.100.9\"]\nipv6_prefix = 64\n\
         bantime_increment = true\nbantime_multipliers = [1, 4]\nbantime_maxtime = \"2d\"\n",
    );
    let daemon = Daemon::start(&bus, &config);
    let a = bus.address.as_str();
    let p = "/org/f2b/jail/ssh";
    let prop = |name: &str| get_property(a, p, "org.f2b.Jail1", name);
    assert_eq!(prop("Ports"), "as 2 \"22\" \"2222-2223\"");
    assert_eq!(prop("Protocol"), "s \"tcp\"");
    assert_eq!(prop("Action"), "s \"reject\"");
    assert_eq!(prop("IgnoreIp"), "as 2 \"192.0.2.0/24\" \"198.51.100.9\"");
    assert_eq!(prop("IgnoreSelf"), "b false");
    assert_eq!(prop("Ipv4Prefix"), "y 32");
    assert_eq!(prop("Ipv6Prefix"), "y 64");
    assert_eq!(prop("BanTimeIncrement"), "b true");
    assert_eq!(prop("BanTimeMultipliers"), "ad 2 1 4");
    assert_eq!(prop("BanTimeMaxTime"), "t 172800");
    assert_eq!(prop("BanTimeRndTime"), "t 0");
    assert_eq!(prop("BanTimeFastRebans"), "b true");
    let web = |name: &str| get_property(a, "/org/f2b/jail/web", "org.f2b.Jail1", name);
    assert_eq!(web("Ports"), "as 0");
    assert_eq!(web("Protocol"), "s \"all\"");
    assert_eq!(web("BanTimeIncrement"), "b false");

    // Two failures of one address (maxretry 3): one address failing, two failures.
    daemon.journal(ssh_failures("203.0.113.50", 2));
    wait_for(Duration::from_secs(10), "CurrentFailures = 2", || {
        prop("CurrentFailures") == "t 2"
    });
    assert_eq!(prop("CurrentlyFailed"), "u 1");
    let table = ok(&f2b(a, &["status"]));
    let head: Vec<&str> = table
        .lines()
        .next()
        .unwrap()
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    let ssh: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("ssh"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        head,
        [
            "JAIL",
            "STATE",
            "FILTER",
            "FAILING",
            "FAILURES",
            "TOTAL FAILURES",
            "BANNED",
            "TOTAL BANNED"
        ],
        "{table}"
    );
    assert_eq!(ssh[3..], ["1", "2", "2", "0", "0"], "{table}");

    let text = ok(&f2b(a, &["status", "ssh"]));
    for want in [
        "Ports:              22, 2222-2223 (tcp)\n",
        "Action:             reject\n",
        "Ignored:            192.0.2.0/24, 198.51.100.9\n",
        "Counted per:        IPv4 /32, IPv6 /64\n",
        "Ban increments:     multipliers 1, 4, at most 2d, counting bans in this jail, fast rebans\n",
        "Failing addresses:  1\n",
        "Failures:           2 (within the find time)\n",
        "Banned addresses:   none\n",
    ] {
        assert!(text.contains(want), "{want:?} in\n{text}");
    }
    ok(&f2b(a, &["ban", "ssh", "203.0.113.9"]));
    let text = ok(&f2b(a, &["status", "ssh"]));
    let tail: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("Banned addresses:"))
        .collect();
    assert_eq!(tail[0], "Banned addresses:", "{text}");
    assert!(
        tail[1].starts_with("  ADDRESS") && tail[2].starts_with("  203.0.113.9 "),
        "{text}"
    );
    let st = json(&f2b(a, &["status", "ssh", "--json"]));
    assert_eq!(st["ports"], serde_json::json!(["22", "2222-2223"]));
    assert_eq!(st["current_failures"], 2);
    assert_eq!(st["ban_time_max_time"], 172800);
    daemon.stop();
}

/// A manual ban did not say who made it: the D-Bus layer passes the caller (uid, user name)
/// with Ban, Unban and UnbanAll to the engine. Served here over an engine handle whose
/// commands the test answers itself.
#[test]
fn ban_and_unban_carry_the_caller() {
    use f2b::engine::{Command, EngineHandle, JailInfo, Origin};
    require_root!();
    let bus = PrivateBus::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (handle, mut rx) = EngineHandle::detached(16);
    let origins = Arc::new(Mutex::new(Vec::new()));
    let seen = origins.clone();
    rt.spawn(async move {
        while let Some(cmd) = rx.recv().await {
            match cmd {
                Command::ListJails(r) => {
                    let _ = r.send(vec![JailInfo {
                        name: "ssh".into(),
                        enabled: true,
                        ..Default::default()
                    }]);
                }
                Command::Ban { origin, reply, .. } => {
                    seen.lock().unwrap().push(origin);
                    let _ = reply.send(Ok(0));
                }
                Command::Unban { origin, reply, .. } | Command::UnbanAll { origin, reply, .. } => {
                    seen.lock().unwrap().push(origin);
                    let _ = reply.send(Ok(1));
                }
                _ => {}
            }
        }
    });
    let server = rt
        .block_on(f2b::dbus::serve(bus.spec(), handle))
        .expect("serve org.f2b");
    let a = bus.address.as_str();
    ok(&f2b(a, &["ban", "ssh", "203.0.113.9"]));
    ok(&f2b(a, &["unban", "ssh", "203.0.113.9"]));
    ok(&f2b(a, &["unban", "--all"]));
    let root = Origin::Manual {
        uid: 0,
        user: Some("root".into()),
    };
    assert_eq!(*origins.lock().unwrap(), [root.clone(), root.clone(), root]);
    assert_eq!(origins.lock().unwrap()[0].to_string(), "root (uid 0)");
    rt.block_on(server.shutdown());
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
