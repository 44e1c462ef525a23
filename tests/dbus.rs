//! The D-Bus control plane on a real, private, system-like bus (dbus-daemon with the default-deny
//! policy of the system bus plus `dbus/org.f2b.conf`).
//!
//! These tests need root (only root may own `org.f2b`, and calls as another user go through
//! `setpriv`); without root they print why they are skipped and pass.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Proc, Output, Stdio};
use std::time::{Duration, Instant};

use f2b::client::{self, ClientCommand};
use f2b::dbus::{self, BusSpec};
use f2b::engine::{BanInfo, Command, CommandError, EngineHandle, Event, JailInfo, ReloadSummary};
use tokio::sync::mpsc;

const NOBODY: &str = "65534";

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root (to own org.f2b and to call as another user)");
            return;
        }
        if which("dbus-daemon").is_none() || which("busctl").is_none() {
            eprintln!("skipped: needs dbus-daemon and busctl (apt install dbus systemd)");
            return;
        }
    };
}

fn which(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(prog))
            .find(|f| f.is_file())
    })
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------------------------
// A private system-like bus
// ---------------------------------------------------------------------------------------------

/// dbus-daemon with `<type>system</type>`, the default-deny policy of the system bus and an
/// `<includedir>` holding a copy of `dbus/org.f2b.conf`. Killed on drop.
struct PrivateBus {
    _dir: tempfile::TempDir,
    child: Child,
    address: String,
}

impl PrivateBus {
    fn start() -> PrivateBus {
        Self::start_with(&[])
    }

    /// With polkit's bus policy too, so that polkitd may own its name.
    fn start_for_polkit() -> PrivateBus {
        Self::start_with(&[Path::new(Polkit::BUS_POLICY)])
    }

    /// `extra`: more policy files to put beside `org.f2b.conf`.
    fn start_with(extra: &[&Path]) -> PrivateBus {
        let dir = tempfile::tempdir().unwrap();
        // Others (uid 65534) must reach the socket.
        chmod(dir.path(), 0o755);
        let policy_dir = dir.path().join("system.d");
        std::fs::create_dir(&policy_dir).unwrap();
        std::fs::copy(
            repo().join("dbus/org.f2b.conf"),
            policy_dir.join("org.f2b.conf"),
        )
        .unwrap();
        for f in extra {
            std::fs::copy(f, policy_dir.join(f.file_name().unwrap())).unwrap();
        }
        let socket = dir.path().join("bus");
        let config = dir.path().join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path={socket}</listen>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <includedir>{policy}</includedir>
</busconfig>
"#,
                socket = socket.display(),
                policy = policy_dir.display()
            ),
        )
        .unwrap();
        let mut child = Proc::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address=1", "--nopidfile"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-daemon");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line.trim().to_string();
        assert!(address.starts_with("unix:"), "dbus-daemon said {address:?}");
        PrivateBus {
            _dir: dir,
            child,
            address,
        }
    }

    fn spec(&self) -> BusSpec {
        BusSpec::Address(self.address.clone())
    }
}

/// `busctl --address=ADDRESS ARGS` as root.
fn busctl(address: &str, args: &[&str]) -> Output {
    Proc::new("busctl")
        .arg(format!("--address={address}"))
        .args(args)
        .output()
        .unwrap()
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

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
        let deadline = Instant::now() + Duration::from_secs(10);
        while !stdout(&busctl(bus_address, &["list", "--acquired"]))
            .contains("org.freedesktop.PolicyKit1")
        {
            assert!(Instant::now() < deadline, "polkitd did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
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

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

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
// A stand-in engine (answers Commands from memory)
// ---------------------------------------------------------------------------------------------

struct FakeEngine {
    handle: EngineHandle,
    jails: BTreeMap<String, JailInfo>,
    bans: BTreeMap<(String, String), BanInfo>,
    /// Commands that change state, by name, in arrival order.
    mutations: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    fail_reload: bool,
}

fn jail_info(name: &str) -> JailInfo {
    JailInfo {
        name: name.into(),
        enabled: true,
        filter: "sshd".into(),
        maxretry: 5,
        findtime_s: 600,
        bantime_s: 3600,
        currently_failed: 0,
        total_failed: 0,
        currently_banned: 0,
        total_banned: 0,
    }
}

const T0: u64 = 1_700_000_000_000_000;

impl FakeEngine {
    fn start(
        jails: &[&str],
        fail_reload: bool,
    ) -> (EngineHandle, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        let (handle, rx) = EngineHandle::detached(64);
        let mutations = std::sync::Arc::default();
        let e = FakeEngine {
            handle: handle.clone(),
            jails: jails
                .iter()
                .map(|j| (j.to_string(), jail_info(j)))
                .collect(),
            bans: BTreeMap::new(),
            mutations: std::sync::Arc::clone(&mutations),
            fail_reload,
        };
        tokio::spawn(e.run(rx));
        (handle, mutations)
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        while let Some(c) = rx.recv().await {
            self.command(c);
        }
    }

    fn note(&self, what: &str) {
        self.mutations.lock().unwrap().push(what.to_string());
    }

    fn jail(&self, name: &str) -> Result<(), CommandError> {
        if self.jails.contains_key(name) {
            Ok(())
        } else {
            Err(CommandError::NoSuchJail(name.into()))
        }
    }

    fn recount(&mut self, jail: &str) {
        let n = self.bans.keys().filter(|(j, _)| j == jail).count() as u32;
        if let Some(j) = self.jails.get_mut(jail) {
            j.currently_banned = n;
        }
        self.handle
            .publish(Event::CountersChanged(vec![jail.into()]));
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::ListJails(r) => {
                let _ = r.send(self.jails.values().cloned().collect());
            }
            Command::Jail(name, r) => {
                let _ = r.send(
                    self.jails
                        .get(&name)
                        .cloned()
                        .ok_or(CommandError::NoSuchJail(name)),
                );
            }
            Command::ListBans {
                jail,
                offset,
                limit,
                reply,
            } => {
                let all: Vec<BanInfo> = self
                    .bans
                    .values()
                    .filter(|b| jail.as_ref().is_none_or(|j| &b.jail == j))
                    .cloned()
                    .collect();
                let res = match &jail {
                    Some(j) if !self.jails.contains_key(j) => {
                        Err(CommandError::NoSuchJail(j.clone()))
                    }
                    _ => Ok((
                        all.iter().skip(offset).take(limit).cloned().collect(),
                        all.len(),
                    )),
                };
                let _ = reply.send(res);
            }
            Command::Ban {
                jail,
                addr,
                duration,
                reply,
            } => {
                self.note("Ban");
                if let Err(e) = self.jail(&jail) {
                    let _ = reply.send(Err(e));
                    return;
                }
                let secs = duration.map_or(3600, |d| d.as_secs());
                let address = if addr.prefix_len() == addr.max_prefix_len() {
                    addr.addr().to_string()
                } else {
                    addr.to_string()
                };
                let until = T0 + secs * 1_000_000;
                self.bans.insert(
                    (jail.clone(), address.clone()),
                    BanInfo {
                        jail: jail.clone(),
                        address: address.clone(),
                        start_us: T0,
                        end_us: until,
                        count: 1,
                        failures: 0,
                    },
                );
                if let Some(j) = self.jails.get_mut(&jail) {
                    j.total_banned += 1;
                }
                self.handle.publish(Event::Banned {
                    jail: jail.clone(),
                    address,
                    until_us: until,
                });
                self.recount(&jail);
                let _ = reply.send(Ok(until));
            }
            Command::Unban { jail, addr, reply } => {
                self.note("Unban");
                if let Some(Err(e)) = jail.as_ref().map(|j| self.jail(j)) {
                    let _ = reply.send(Err(e));
                    return;
                }
                let address = if addr.prefix_len() == addr.max_prefix_len() {
                    addr.addr().to_string()
                } else {
                    addr.to_string()
                };
                let keys: Vec<_> = self
                    .bans
                    .keys()
                    .filter(|(j, a)| *a == address && jail.as_ref().is_none_or(|x| x == j))
                    .cloned()
                    .collect();
                for k in &keys {
                    self.bans.remove(k);
                    self.handle.publish(Event::Unbanned {
                        jail: k.0.clone(),
                        address: k.1.clone(),
                    });
                    self.recount(&k.0);
                }
                let _ = reply.send(Ok(keys.len() as u32));
            }
            Command::UnbanAll { jail, reply } => {
                self.note("UnbanAll");
                let keys: Vec<_> = self
                    .bans
                    .keys()
                    .filter(|(j, _)| jail.as_ref().is_none_or(|x| x == j))
                    .cloned()
                    .collect();
                for k in &keys {
                    self.bans.remove(k);
                    self.recount(&k.0);
                }
                let _ = reply.send(Ok(keys.len() as u32));
            }
            Command::SetEnabled {
                jail,
                enabled,
                reply,
            } => {
                self.note(if enabled { "Start" } else { "Stop" });
                let res = match self.jails.get_mut(&jail) {
                    Some(j) => {
                        j.enabled = enabled;
                        self.handle.publish(Event::JailsChanged);
                        Ok(())
                    }
                    None => Err(CommandError::NoSuchJail(jail)),
                };
                let _ = reply.send(res);
            }
            Command::SetTunable { jail, value, reply } => {
                self.note("SetTunable");
                let res = match self.jails.get_mut(&jail) {
                    Some(j) => {
                        match value {
                            f2b::engine::Tunable::MaxRetry(n) => j.maxretry = n,
                            f2b::engine::Tunable::FindTime(d) => j.findtime_s = d.as_secs(),
                            f2b::engine::Tunable::BanTime(d) => {
                                j.bantime_s = d.map_or(-1, |d| d.as_secs() as i64)
                            }
                        }
                        self.handle.publish(Event::JailsChanged);
                        Ok(())
                    }
                    None => Err(CommandError::NoSuchJail(jail)),
                };
                let _ = reply.send(res);
            }
            Command::Reload(reply) => {
                self.note("Reload");
                if self.fail_reload {
                    let _ = reply.send(Err(CommandError::InvalidConfig(
                        "/etc/f2b/f2b.toml:3: maxretry: 0 is not in 1..=1000000".into(),
                    )));
                    return;
                }
                let unchanged: Vec<String> = self.jails.keys().cloned().collect();
                self.jails.insert("added".into(), jail_info("added"));
                self.handle.publish(Event::JailsChanged);
                let _ = reply.send(Ok(ReloadSummary {
                    added: vec!["added".into()],
                    unchanged,
                    ..Default::default()
                }));
            }
            Command::History { addr, reply } => {
                let _ = reply.send(if addr.to_string() == "203.0.113.9" {
                    vec![("sshd".into(), T0)]
                } else {
                    vec![]
                });
            }
        }
    }
}

/// A private bus and the control plane serving a fake engine on it.
struct Fixture {
    bus: PrivateBus,
    engine: EngineHandle,
    mutations: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _server: dbus::DbusServer,
}

async fn fixture(jails: &[&str], fail_reload: bool) -> Fixture {
    fixture_on(PrivateBus::start(), jails, fail_reload).await
}

async fn fixture_on(bus: PrivateBus, jails: &[&str], fail_reload: bool) -> Fixture {
    let (engine, mutations) = FakeEngine::start(jails, fail_reload);
    let server = dbus::serve(bus.spec(), engine.clone())
        .await
        .expect("serve");
    Fixture {
        bus,
        engine,
        mutations,
        _server: server,
    }
}

/// Run a blocking closure (a subprocess) without stalling the runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
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

#[tokio::test(flavor = "multi_thread")]
async fn introspection_matches_documented_xml() {
    require_root!();
    let fx = fixture(&["sshd"], false).await;
    let address = fx.bus.address.clone();
    let served = blocking(move || served_interfaces(&address, "/org/f2b/jail/sshd")).await;
    let documented = documented_interfaces();
    for (name, doc) in &documented {
        let got = served
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not served"));
        assert_eq!(got, doc, "served {name} differs from dbus/org.f2b.xml");
    }
}

// ---------------------------------------------------------------------------------------------
// The control plane with a stand-in engine
// ---------------------------------------------------------------------------------------------

use f2b::dbus::proxy::{Jail1Proxy, Manager1Proxy};

async fn manager(conn: &zbus::Connection) -> Manager1Proxy<'static> {
    Manager1Proxy::builder(conn)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .unwrap()
}

async fn jail(conn: &zbus::Connection, name: &str) -> Jail1Proxy<'static> {
    Jail1Proxy::builder(conn)
        .path(dbus::jail_path(name))
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .unwrap()
}

/// The next item of a stream, or `None` after `timeout`.
async fn next_within<S>(s: &mut S, timeout: Duration) -> Option<S::Item>
where
    S: zbus::export::futures_core::Stream + Unpin,
{
    let next = std::future::poll_fn(|cx| std::pin::Pin::new(&mut *s).poll_next(cx));
    tokio::time::timeout(timeout, next).await.ok().flatten()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn stub_anyone_reads_but_only_root_changes() {
    require_root!();
    let fx = fixture(&["sshd"], false).await;
    let address = fx.bus.address.clone();
    let mutations = fx.mutations.clone();
    blocking(move || {
        let a = address.as_str();
        let m = ["org.f2b", "/org/f2b", "org.f2b.Manager1"];
        let j = ["org.f2b", "/org/f2b/jail/sshd", "org.f2b.Jail1"];
        let call = |target: &[&str; 3], rest: &[&str]| -> Vec<String> {
            let mut v = vec!["call".to_string()];
            v.extend(target.iter().map(|s| s.to_string()));
            v.extend(rest.iter().map(|s| s.to_string()));
            v
        };
        // Reads.
        for args in [
            call(&m, &["ListJails"]),
            call(&m, &["GetBans", "suu", "", "0", "100"]),
            call(&m, &["GetHistory", "s", "203.0.113.9"]),
            call(&j, &["ListBans", "uu", "0", "10"]),
        ] {
            ok(&busctl_as_nobody(a, &strs(&args)));
        }
        assert_eq!(
            ok(&busctl_as_nobody(
                a,
                &[
                    "get-property",
                    "org.f2b",
                    "/org/f2b",
                    "org.f2b.Manager1",
                    "Jails"
                ]
            )),
            "as 1 \"sshd\"\n"
        );
        assert_eq!(
            ok(&busctl_as_nobody(
                a,
                &["get-property", j[0], j[1], j[2], "MaxRetry"]
            )),
            "u 5\n"
        );
        // Every change is refused, and nothing reaches the engine.
        // busctl shows the message of an error, dbus-send its name.
        refused(
            &dbus_send_as_nobody(a, "/org/f2b", "org.f2b.Manager1.UnbanAll", &["string:"]),
            "org.f2b.Error.NotAuthorized",
        );
        for args in [
            call(&m, &["Ban", "sst", "sshd", "203.0.113.9", "0"]),
            call(&m, &["Unban", "ss", "", "203.0.113.9"]),
            call(&m, &["UnbanAll", "s", ""]),
            call(&m, &["Reload"]),
            call(&j, &["Ban", "st", "203.0.113.9", "60"]),
            call(&j, &["Unban", "s", "203.0.113.9"]),
            call(&j, &["Start"]),
            call(&j, &["Stop"]),
        ] {
            refused(&busctl_as_nobody(a, &strs(&args)), NOT_AUTHORIZED);
        }
        for (prop, sig, val) in [
            ("MaxRetry", "u", "3"),
            ("FindTime", "t", "60"),
            ("BanTime", "x", "-1"),
        ] {
            refused(
                &busctl_as_nobody(a, &["--", "set-property", j[0], j[1], j[2], prop, sig, val]),
                NOT_AUTHORIZED,
            );
        }
        assert!(
            mutations.lock().unwrap().is_empty(),
            "{:?}",
            mutations.lock().unwrap()
        );
        assert_eq!(
            ok(&busctl_as_nobody(
                a,
                &["get-property", j[0], j[1], j[2], "MaxRetry"]
            )),
            "u 5\n"
        );
        // Root may.
        ok(&busctl(
            a,
            &strs(&call(&m, &["Ban", "sst", "sshd", "203.0.113.9", "0"])),
        ));
        ok(&busctl(
            a,
            &["set-property", j[0], j[1], j[2], "MaxRetry", "u", "3"],
        ));
        assert_eq!(
            ok(&busctl(a, &["get-property", j[0], j[1], j[2], "MaxRetry"])),
            "u 3\n"
        );
        assert_eq!(*mutations.lock().unwrap(), ["Ban", "SetTunable"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stub_arguments_are_validated_before_the_engine() {
    require_root!();
    let fx = fixture(&["sshd"], false).await;
    let conn = fx.bus.spec().connect().await.unwrap();
    let m = manager(&conn).await;
    let err = |r: Result<u64, dbus::Error>| r.unwrap_err();
    assert!(matches!(
        err(m.ban("sshd", "1.2.3", 0).await),
        dbus::Error::InvalidAddress(_)
    ));
    assert!(matches!(
        err(m.ban("sshd", "0.0.0.0/0", 0).await),
        dbus::Error::InvalidAddress(_)
    ));
    assert!(matches!(
        err(m.ban("sshd", "203.0.113.9/24", 0).await),
        dbus::Error::InvalidAddress(_)
    ));
    assert!(matches!(
        err(m.ban("sshd", "203.0.113.9", u64::MAX).await),
        dbus::Error::InvalidArgument(_)
    ));
    assert!(matches!(
        err(m.ban("../x", "203.0.113.9", 0).await),
        dbus::Error::NoSuchJail(_)
    ));
    assert!(fx.mutations.lock().unwrap().is_empty());
    // Unknown jail: the engine says so.
    assert!(matches!(
        err(m.ban("nope", "203.0.113.9", 0).await),
        dbus::Error::NoSuchJail(_)
    ));
    let e = m.get_bans("", 0, 10_001).await.unwrap_err();
    assert!(matches!(e, dbus::Error::InvalidArgument(_)), "{e:?}");
    let j = jail(&conn, "sshd").await;
    let e = j.set_max_retry(0).await.unwrap_err();
    assert!(
        e.to_string().contains("org.f2b.Error.InvalidArgument"),
        "{e}"
    );
    let e = j.set_ban_time(0).await.unwrap_err();
    assert!(
        e.to_string().contains("org.f2b.Error.InvalidArgument"),
        "{e}"
    );
    j.set_ban_time(-1).await.unwrap();
    assert_eq!(j.ban_time().await.unwrap(), -1);
}

#[tokio::test(flavor = "multi_thread")]
async fn stub_bans_are_paged() {
    require_root!();
    let fx = fixture(&["sshd", "web"], false).await;
    let conn = fx.bus.spec().connect().await.unwrap();
    let m = manager(&conn).await;
    for i in 0..25 {
        m.ban("sshd", &format!("198.51.100.{i}"), 60).await.unwrap();
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
    assert_eq!(all[25].address, "2001:db8::/64");
    let (page, total) = m.get_bans("web", 0, 0).await.unwrap();
    assert!(page.is_empty());
    assert_eq!(total, 1);
    let (page, total) = jail(&conn, "sshd").await.list_bans(20, 100).await.unwrap();
    assert_eq!((page.len(), total), (5, 25));
}

#[tokio::test(flavor = "multi_thread")]
async fn stub_signals_follow_events() {
    require_root!();
    let fx = fixture(&["sshd"], false).await;
    let conn = fx.bus.spec().connect().await.unwrap();
    let m = manager(&conn).await;
    let mut banned = m.receive_banned().await.unwrap();
    let mut unbanned = m.receive_unbanned().await.unwrap();
    let until = m.ban("sshd", "203.0.113.9", 60).await.unwrap();
    let sig = next_within(&mut banned, Duration::from_secs(5))
        .await
        .expect("Banned");
    let args = sig.args().unwrap();
    assert_eq!(
        (args.jail(), args.address(), *args.until_usec()),
        (&"sshd", &"203.0.113.9", until)
    );
    assert_eq!(m.unban("", "203.0.113.9").await.unwrap(), 1);
    let sig = next_within(&mut unbanned, Duration::from_secs(5))
        .await
        .expect("Unbanned");
    assert_eq!(sig.args().unwrap().address(), &"203.0.113.9");
    assert_eq!(m.unban("", "203.0.113.9").await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn stub_properties_changed_is_rate_limited() {
    require_root!();
    let fx = fixture(&["sshd"], false).await;
    let conn = fx.bus.spec().connect().await.unwrap();
    let props = zbus::fdo::PropertiesProxy::builder(&conn)
        .destination("org.f2b")
        .path("/org/f2b/jail/sshd")
        .build()
        .await
        .unwrap();
    let mut changes = props.receive_properties_changed().await.unwrap();
    // Record each PropertiesChanged as it arrives.
    let collector = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(sig) = next_within(&mut changes, Duration::from_millis(2500)).await {
            let args = sig.args().unwrap();
            let banned = args
                .changed_properties()
                .get("CurrentlyBanned")
                .map(|v| u32::try_from(v.try_clone().unwrap()).unwrap());
            seen.push((Instant::now(), banned));
        }
        seen
    });
    let m = manager(&conn).await;
    // A storm: 300 bans as fast as the bus goes.
    let start = Instant::now();
    for i in 0..300u32 {
        m.ban("sshd", &format!("10.{}.{}.1", i / 256, i % 256), 60)
            .await
            .unwrap();
    }
    let storm = start.elapsed();
    let seen = collector.await.unwrap();
    let secs = storm.as_secs_f64().ceil() as usize + 2;
    assert!(!seen.is_empty(), "no PropertiesChanged at all");
    assert!(
        seen.len() <= secs,
        "{} PropertiesChanged in {storm:?}",
        seen.len()
    );
    for w in seen.windows(2) {
        assert!(
            w[1].0 - w[0].0 >= Duration::from_millis(900),
            "two within a second"
        );
    }
    assert_eq!(
        seen.last().unwrap().1,
        Some(300),
        "the last one has the final count"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stub_jail_objects_follow_the_configuration() {
    require_root!();
    let fx = fixture(&["sshd"], false).await;
    let conn = fx.bus.spec().connect().await.unwrap();
    let m = manager(&conn).await;
    let (added, removed, _, unchanged) = m.reload().await.unwrap();
    assert_eq!(
        (added, removed, unchanged),
        (vec!["added".to_string()], vec![], vec!["sshd".to_string()])
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(name) = jail(&conn, "added").await.name().await {
            assert_eq!(name, "added");
            break;
        }
        assert!(Instant::now() < deadline, "no object for the new jail");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(m.jails().await.unwrap(), ["added", "sshd"]);
    let _ = &fx.engine;
}

#[tokio::test(flavor = "multi_thread")]
async fn stub_reload_error_names_the_line() {
    require_root!();
    let fx = fixture(&["sshd"], true).await;
    let conn = fx.bus.spec().connect().await.unwrap();
    match manager(&conn).await.reload().await {
        Err(dbus::Error::InvalidConfig(msg)) => assert!(msg.contains("f2b.toml:3"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stub_second_daemon_is_told_the_name_is_taken() {
    require_root!();
    let fx = fixture(&["sshd"], false).await;
    match dbus::serve(fx.bus.spec(), fx.engine.clone()).await {
        Err(e @ dbus::DbusError::NameTaken { .. }) => {
            assert!(e.to_string().contains("another f2bd"), "{e}")
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a second server got the name"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stub_client_says_when_the_daemon_is_not_running() {
    require_root!();
    let bus = PrivateBus::start();
    let code = client::run(bus.spec(), ClientCommand::Status { jail: None }, false)
        .await
        .unwrap();
    assert_eq!(code, client::EXIT_NOT_RUNNING);
    let code = client::run(
        BusSpec::Address("unix:path=/nonexistent/bus".into()),
        ClientCommand::Reload,
        false,
    )
    .await
    .unwrap();
    assert_eq!(code, client::EXIT_NOT_RUNNING);
}

#[tokio::test(flavor = "multi_thread")]
async fn stub_polkit_decides_for_the_caller() {
    require_root!();
    if !Polkit::available() {
        eprintln!("skipped: needs polkitd (apt install polkitd) and unshare");
        return;
    }
    let fx = fixture_on(PrivateBus::start_for_polkit(), &["sshd"], false).await;
    // nobody is granted org.f2b.manage by a rule; daemon (uid 1) falls to the defaults
    // (auth_admin, and there is no agent to ask).
    let address = fx.bus.address.clone();
    let _polkit = blocking(move || Polkit::start(&address, NOBODY_MAY_MANAGE)).await;
    let address = fx.bus.address.clone();
    let mutations = fx.mutations.clone();
    blocking(move || {
        let a = address.as_str();
        ok(&busctl_as_nobody(
            a,
            &[
                "call",
                "org.f2b",
                "/org/f2b",
                "org.f2b.Manager1",
                "Ban",
                "sst",
                "sshd",
                "203.0.113.9",
                "0",
            ],
        ));
        let o = Proc::new("setpriv")
            .args([
                "--reuid=1",
                "--regid=1",
                "--clear-groups",
                "busctl",
                &format!("--address={a}"),
            ])
            .args([
                "call",
                "org.f2b",
                "/org/f2b",
                "org.f2b.Manager1",
                "UnbanAll",
                "s",
                "",
            ])
            .output()
            .unwrap();
        refused(&o, NOT_AUTHORIZED);
        refused(&o, "authentication is required");
        assert_eq!(*mutations.lock().unwrap(), ["Ban"]);
    })
    .await;
}
