//! The `f2b` command line client: talks to f2bd over D-Bus (`org.f2b`).
//!
//! Read commands print tables for humans or JSON (`--json`) for scripts. Exit status:
//! [`EXIT_OK`], [`EXIT_FAILURE`] (a refused or failed request: the message says why),
//! [`EXIT_NOT_RUNNING`] (f2bd is not on the bus, or the bus cannot be reached) and
//! [`EXIT_DENIED`] (not authorized).

use std::collections::HashMap;
use std::future::poll_fn;
use std::io::Write;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::json;
use zbus::export::futures_core::Stream;
use zbus::{Connection, OwnedVariant};

use crate::config::{format_duration, parse_duration};
use crate::dbus::error::error_name;
use crate::dbus::proxy::{Jail1Proxy, Manager1Proxy};
use crate::dbus::{
    jail_path, validate, BanRecord, BusSpec, Error, BUS_NAME, JAIL_IFACE, MANAGER_IFACE,
    MANAGER_PATH,
};

/// Success.
pub const EXIT_OK: i32 = 0;
/// The request failed or was refused (bad argument, no such jail, firewall error, …).
pub const EXIT_FAILURE: i32 = 1;
/// f2bd is not running (nobody owns `org.f2b`) or the bus cannot be reached.
pub const EXIT_NOT_RUNNING: i32 = 3;
/// The caller may not do this (not root, and polkit did not grant `org.f2b.manage`).
pub const EXIT_DENIED: i32 = 4;

/// Page size used when listing bans.
const PAGE: u32 = validate::MAX_PAGE;

/// What the `f2b` binary asks of the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCommand {
    /// Every jail with its counters, or one jail's settings, counters and bans.
    Status { jail: Option<String> },
    /// Ban an address or prefix; `for_` is a duration such as `1h` (default: the jail's).
    Ban {
        jail: String,
        addr: String,
        for_: Option<String>,
    },
    /// Unban addresses from one jail or every jail; with `all`, lift every ban (of `jail`, or
    /// of every jail) and `addrs` must be empty. See [`ClientCommand::unban`].
    Unban {
        jail: Option<String>,
        addrs: Vec<String>,
        all: bool,
    },
    /// Active bans of one jail or of all.
    Bans { jail: Option<String> },
    /// Re-read the configuration.
    Reload,
    /// Print bans and unbans as they happen, until Ctrl-C.
    Monitor,
    /// Past bans of one address.
    History { addr: String },
    /// Enable a jail at run time.
    Start { jail: String },
    /// Disable a jail at run time.
    Stop { jail: String },
    /// Change a tunable at run time: `setting` is `maxretry`, `findtime` or `bantime`
    /// (durations as text, `-1`/`forever` for a permanent ban time).
    Set {
        jail: String,
        setting: String,
        value: String,
    },
}

impl ClientCommand {
    /// Build `Unban` from the words of `f2b unban [JAIL] ADDR…` / `f2b unban --all [JAIL]`:
    /// without `--all`, the first word is a jail when it is not an address and more words
    /// follow.
    pub fn unban(args: Vec<String>, all: bool) -> Result<ClientCommand, String> {
        let mut args = args;
        if all {
            return match args.len() {
                0 => Ok(ClientCommand::Unban {
                    jail: None,
                    addrs: vec![],
                    all: true,
                }),
                1 => Ok(ClientCommand::Unban {
                    jail: args.pop(),
                    addrs: vec![],
                    all: true,
                }),
                _ => Err("--all takes at most one jail and no addresses".into()),
            };
        }
        if args.is_empty() {
            return Err("give at least one address to unban (or --all)".into());
        }
        let jail = if args.len() > 1 && validate::address(&args[0]).is_err() {
            Some(args.remove(0))
        } else {
            None
        };
        Ok(ClientCommand::Unban {
            jail,
            addrs: args,
            all: false,
        })
    }
}

/// A failure, sorted by how it is reported.
#[derive(Debug)]
enum Failure {
    NotRunning(String),
    Denied(String),
    Failed(String),
}

impl Failure {
    fn code(&self) -> i32 {
        match self {
            Failure::NotRunning(_) => EXIT_NOT_RUNNING,
            Failure::Denied(_) => EXIT_DENIED,
            Failure::Failed(_) => EXIT_FAILURE,
        }
    }

    fn report(&self) -> i32 {
        let msg = match self {
            Failure::NotRunning(m) | Failure::Denied(m) | Failure::Failed(m) => m,
        };
        eprintln!("f2b: {msg}");
        self.code()
    }
}

fn denied(msg: &str) -> Failure {
    Failure::Denied(format!(
        "permission denied: {msg}, run as root or get org.f2b.manage through polkit"
    ))
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e {
            Error::NotAuthorized(m) => denied(&m),
            Error::ZBus(e) => Failure::from(e),
            Error::NoSuchJail(m)
            | Error::InvalidAddress(m)
            | Error::InvalidConfig(m)
            | Error::InvalidArgument(m)
            | Error::Firewall(m)
            | Error::ShuttingDown(m) => Failure::Failed(m),
        }
    }
}

impl From<zbus::Error> for Failure {
    fn from(e: zbus::Error) -> Self {
        match error_name(&e) {
            Some((name, msg)) => match name.as_str() {
                "org.freedesktop.DBus.Error.ServiceUnknown"
                | "org.freedesktop.DBus.Error.NameHasNoOwner"
                | "org.freedesktop.DBus.Error.NoReply" => {
                    Failure::NotRunning(format!("f2bd is not running ({msg})"))
                }
                "org.freedesktop.DBus.Error.AccessDenied" => denied(&msg),
                "org.f2b.Error.NotAuthorized" => denied(&msg),
                _ if msg.is_empty() => Failure::Failed(name),
                _ => Failure::Failed(msg),
            },
            None => Failure::Failed(format!("D-Bus error: {e}")),
        }
    }
}

type Outcome = Result<i32, Failure>;

/// Run one client command against f2bd on `bus`; returns the exit status. Errors are printed
/// to stderr here; `Err` is left for failures to write the output itself.
pub async fn run(bus: BusSpec, cmd: ClientCommand, json: bool) -> anyhow::Result<i32> {
    let conn = match bus.connect().await {
        Ok(c) => c,
        Err(e) => {
            return Ok(Failure::NotRunning(format!("cannot connect to the {bus}: {e}")).report())
        }
    };
    let client = Client { conn, bus, json };
    let res = match client.check_running().await {
        Ok(()) => client.dispatch(cmd).await,
        Err(f) => Err(f),
    };
    Ok(match res {
        Ok(code) => code,
        Err(f) => f.report(),
    })
}

struct Client {
    conn: Connection,
    bus: BusSpec,
    json: bool,
}

impl Client {
    async fn check_running(&self) -> Result<(), Failure> {
        let dbus = zbus::fdo::DBusProxy::new(&self.conn).await?;
        let name = zbus::names::BusName::try_from(BUS_NAME)?;
        if dbus.name_has_owner(name).await.map_err(zbus::Error::from)? {
            Ok(())
        } else {
            Err(Failure::NotRunning(format!(
                "f2bd is not running (nobody owns {BUS_NAME} on the {})",
                self.bus
            )))
        }
    }

    async fn manager(&self) -> Result<Manager1Proxy<'static>, Failure> {
        Ok(Manager1Proxy::builder(&self.conn)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?)
    }

    async fn jail(&self, name: &str) -> Result<Jail1Proxy<'static>, Failure> {
        Ok(Jail1Proxy::builder(&self.conn)
            .path(jail_path(name))
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?)
    }

    async fn dispatch(&self, cmd: ClientCommand) -> Outcome {
        match cmd {
            ClientCommand::Status { jail: None } => self.status_all().await,
            ClientCommand::Status { jail: Some(j) } => self.status_jail(&j).await,
            ClientCommand::Ban { jail, addr, for_ } => self.ban(&jail, &addr, for_).await,
            ClientCommand::Unban { jail, addrs, all } => self.unban(jail, addrs, all).await,
            ClientCommand::Bans { jail } => self.bans(jail).await,
            ClientCommand::Reload => self.reload().await,
            ClientCommand::Monitor => self.monitor().await,
            ClientCommand::History { addr } => self.history(&addr).await,
            ClientCommand::Start { jail } => self.start_stop(&jail, true).await,
            ClientCommand::Stop { jail } => self.start_stop(&jail, false).await,
            ClientCommand::Set {
                jail,
                setting,
                value,
            } => self.set(&jail, &setting, &value).await,
        }
    }

    /// The properties of one jail object, or `NoSuchJail`.
    async fn jail_status(&self, name: &str) -> Result<JailStatus, Failure> {
        let path = zbus::ObjectPath::try_from(jail_path(name))?;
        let props = zbus::fdo::PropertiesProxy::builder(&self.conn)
            .destination(BUS_NAME)
            .path(path)
            .build()
            .await?;
        let iface = zbus::names::InterfaceName::try_from(JAIL_IFACE)?;
        match props.get_all(iface).await {
            Ok(map) => JailStatus::from_props(map).ok_or_else(|| {
                Failure::Failed(format!("f2bd sent incomplete properties for jail {name}"))
            }),
            Err(e) => match error_name(&zbus::Error::from(e.clone())) {
                Some((n, _))
                    if n == "org.freedesktop.DBus.Error.UnknownObject"
                        || n == "org.freedesktop.DBus.Error.UnknownInterface"
                        || n == "org.freedesktop.DBus.Error.UnknownMethod" =>
                {
                    Err(Failure::Failed(format!("no such jail: {name}")))
                }
                _ => Err(zbus::Error::from(e).into()),
            },
        }
    }

    async fn status_all(&self) -> Outcome {
        let m = self.manager().await?;
        let names = m.list_jails().await?;
        let mut jails = Vec::new();
        for n in &names {
            match self.jail_status(n).await {
                Ok(s) => jails.push(s),
                // Removed by a reload in between: skip it.
                Err(Failure::Failed(_)) => {}
                Err(f) => return Err(f),
            }
        }
        if self.json {
            print_json(&jails);
        } else if jails.is_empty() {
            println!("no jails configured");
        } else {
            let mut t = Table::new(&[
                "JAIL",
                "STATE",
                "FILTER",
                "FAILED",
                "TOTAL FAILED",
                "BANNED",
                "TOTAL BANNED",
            ]);
            for j in &jails {
                t.row(vec![
                    j.name.clone(),
                    state(j.enabled).into(),
                    dash(&j.filter),
                    j.currently_failed.to_string(),
                    j.total_failed.to_string(),
                    j.currently_banned.to_string(),
                    j.total_banned.to_string(),
                ]);
            }
            t.print();
        }
        Ok(EXIT_OK)
    }

    async fn status_jail(&self, name: &str) -> Outcome {
        validate::jail(name)?;
        let status = self.jail_status(name).await?;
        let jail = self.jail(name).await?;
        let bans = page_all(|off| {
            let jail = jail.clone();
            async move { jail.list_bans(off, PAGE).await }
        })
        .await?;
        if self.json {
            let mut v = serde_json::to_value(&status)?;
            v["bans"] = serde_json::to_value(&bans)?;
            print_json(&v);
            return Ok(EXIT_OK);
        }
        let bantime = if status.ban_time < 0 {
            "permanent".to_string()
        } else {
            format_duration(Duration::from_secs(status.ban_time as u64))
        };
        let rows = [
            ("Jail", status.name.clone()),
            ("State", state(status.enabled).into()),
            ("Filter", dash(&status.filter)),
            ("Max retry", status.max_retry.to_string()),
            (
                "Find time",
                format_duration(Duration::from_secs(status.find_time)),
            ),
            ("Ban time", bantime),
            ("Currently failed", status.currently_failed.to_string()),
            ("Total failed", status.total_failed.to_string()),
            ("Currently banned", status.currently_banned.to_string()),
            ("Total banned", status.total_banned.to_string()),
        ];
        for (k, v) in rows {
            println!("{:<18}{v}", format!("{k}:"));
        }
        if bans.is_empty() {
            println!("Banned addresses:  none");
        } else {
            println!("Banned addresses:");
            ban_table(&bans, false).print();
        }
        Ok(EXIT_OK)
    }

    async fn ban(&self, jail: &str, addr: &str, for_: Option<String>) -> Outcome {
        let seconds = match for_.as_deref() {
            None => 0,
            Some(text) => {
                let d = parse_duration(text).map_err(|e| Failure::Failed(format!("--for: {e}")))?;
                if d.as_secs() == 0 {
                    return Err(Failure::Failed(
                        "--for: the duration must be at least 1s (omit --for for the jail's ban time)"
                            .into(),
                    ));
                }
                d.as_secs()
            }
        };
        let until = self.manager().await?.ban(jail, addr, seconds).await?;
        if self.json {
            print_json(&json!({"jail": jail, "address": addr, "until_usec": until}));
        } else if until == 0 {
            println!("banned {addr} in {jail} permanently");
        } else {
            println!("banned {addr} in {jail} until {}", local_time(until));
        }
        Ok(EXIT_OK)
    }

    async fn unban(&self, jail: Option<String>, addrs: Vec<String>, all: bool) -> Outcome {
        let m = self.manager().await?;
        let jail_arg = jail.clone().unwrap_or_default();
        let where_ = match &jail {
            Some(j) => format!("jail {j}"),
            None => "every jail".into(),
        };
        if all {
            if !addrs.is_empty() {
                return Err(Failure::Failed("--all takes no addresses".into()));
            }
            let n = m.unban_all(&jail_arg).await?;
            if self.json {
                print_json(&json!({"jail": jail, "unbanned": n}));
            } else {
                println!("lifted {n} ban{} in {where_}", plural(n));
            }
            return Ok(EXIT_OK);
        }
        if addrs.is_empty() {
            return Err(Failure::Failed(
                "give at least one address to unban (or --all)".into(),
            ));
        }
        let mut code = EXIT_OK;
        let mut results = Vec::new();
        for a in &addrs {
            match m.unban(&jail_arg, a).await {
                Ok(n) => {
                    if !self.json {
                        if n == 0 {
                            println!("{a} was not banned in {where_}");
                        } else {
                            println!("unbanned {a} ({n} ban{} lifted)", plural(n));
                        }
                    }
                    results.push(json!({"address": a, "unbanned": n}));
                }
                Err(e) => {
                    let f = Failure::from(e);
                    // Stop at the first failure that will repeat for every address.
                    if !matches!(f, Failure::Failed(_)) {
                        return Err(f);
                    }
                    code = code.max(f.report());
                    results.push(json!({"address": a, "error": format!("{f:?}")}));
                }
            }
        }
        if self.json {
            print_json(&json!({"jail": jail, "results": results}));
        }
        Ok(code)
    }

    async fn bans(&self, jail: Option<String>) -> Outcome {
        let jail = jail.unwrap_or_default();
        let m = self.manager().await?;
        let bans = page_all(|off| {
            let m = m.clone();
            let jail = jail.clone();
            async move { m.get_bans(&jail, off, PAGE).await }
        })
        .await?;
        if self.json {
            print_json(&bans);
        } else if bans.is_empty() {
            println!("no active bans");
        } else {
            ban_table(&bans, true).print();
        }
        Ok(EXIT_OK)
    }

    async fn reload(&self) -> Outcome {
        let m = self.manager().await?;
        let (added, removed, changed, unchanged) = match m.reload().await {
            Ok(r) => r,
            Err(Error::InvalidConfig(msg)) => {
                return Err(Failure::Failed(format!(
                    "reload failed, the running configuration stays: {msg}"
                )))
            }
            Err(e) => return Err(e.into()),
        };
        if self.json {
            print_json(&json!({
                "added": added, "removed": removed, "changed": changed, "unchanged": unchanged
            }));
            return Ok(EXIT_OK);
        }
        let mut parts = Vec::new();
        for (what, list) in [
            ("added", &added),
            ("removed", &removed),
            ("changed", &changed),
            ("unchanged", &unchanged),
        ] {
            if !list.is_empty() {
                parts.push(format!("{what}: {}", list.join(", ")));
            }
        }
        if parts.is_empty() {
            println!("reloaded (no jails)");
        } else {
            println!("reloaded; {}", parts.join("; "));
        }
        Ok(EXIT_OK)
    }

    async fn history(&self, addr: &str) -> Outcome {
        let list = self.manager().await?.get_history(addr).await?;
        if self.json {
            print_json(&list);
        } else if list.is_empty() {
            println!("{addr} has no past bans");
        } else {
            let mut t = Table::new(&["JAIL", "BANNED AT"]);
            for h in &list {
                t.row(vec![h.jail.clone(), local_time(h.start_usec)]);
            }
            t.print();
        }
        Ok(EXIT_OK)
    }

    async fn start_stop(&self, jail: &str, start: bool) -> Outcome {
        validate::jail(jail)?;
        self.jail_status(jail).await?;
        let p = self.jail(jail).await?;
        if start {
            p.start().await?;
        } else {
            p.stop().await?;
        }
        if !self.json {
            println!("{} {jail}", if start { "started" } else { "stopped" });
        }
        Ok(EXIT_OK)
    }

    async fn set(&self, jail: &str, setting: &str, value: &str) -> Outcome {
        validate::jail(jail)?;
        self.jail_status(jail).await?;
        let p = self.jail(jail).await?;
        let bad = |e: String| Failure::Failed(format!("{setting}: {e}"));
        let res = match setting {
            "maxretry" => {
                let n: u32 = value
                    .parse()
                    .map_err(|_| bad(format!("{value:?} is not a number")))?;
                p.set_max_retry(n).await
            }
            "findtime" => {
                p.set_find_time(parse_duration(value).map_err(bad)?.as_secs())
                    .await
            }
            "bantime" => {
                let s = match value {
                    "-1" | "forever" | "permanent" => -1,
                    v => parse_duration(v).map_err(bad)?.as_secs() as i64,
                };
                p.set_ban_time(s).await
            }
            other => {
                return Err(Failure::Failed(format!(
                    "unknown setting {other:?}: use maxretry, findtime or bantime"
                )))
            }
        };
        res.map_err(|e| Failure::from(Error::from(e)))?;
        if !self.json {
            println!("{jail}: {setting} = {value}");
        }
        Ok(EXIT_OK)
    }

    async fn monitor(&self) -> Outcome {
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .sender(BUS_NAME)
            .interface(MANAGER_IFACE)
            .path(MANAGER_PATH)
            .build()?;
        let mut signals = zbus::MessageStream::for_match_rule(rule, &self.conn, None).await?;
        let dbus = zbus::fdo::DBusProxy::new(&self.conn).await?;
        let mut owners = dbus
            .receive_name_owner_changed_with_args(&[(0, BUS_NAME)])
            .await?;
        eprintln!("monitoring {BUS_NAME} on the {} (Ctrl-C to stop)", self.bus);
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            tokio::select! {
                _ = &mut ctrl_c => return Ok(EXIT_OK),
                msg = next(&mut signals) => {
                    let Some(msg) = msg else {
                        return Err(Failure::NotRunning("the bus connection closed".into()));
                    };
                    let msg = msg?;
                    self.print_signal(&msg);
                }
                owner = next(&mut owners) => {
                    let Some(sig) = owner else { continue };
                    if let Ok(args) = sig.args() {
                        if args.new_owner().is_some() {
                            eprintln!("f2bd started");
                        } else {
                            eprintln!("f2bd stopped; waiting for it to come back");
                        }
                    }
                }
            }
        }
    }

    fn print_signal(&self, msg: &zbus::Message) {
        let hdr = msg.header();
        let now = now_usec();
        let line = match hdr.member().map(|m| m.as_str()) {
            Some("Banned") => match msg.body().deserialize::<(String, String, u64)>() {
                Ok((jail, address, until)) => {
                    if self.json {
                        json!({"event": "banned", "time_usec": now, "jail": jail,
                               "address": address, "until_usec": until})
                        .to_string()
                    } else {
                        let until = if until == 0 {
                            "permanently".to_string()
                        } else {
                            format!("until {}", local_time(until))
                        };
                        format!("{} banned   {jail} {address} {until}", local_time(now))
                    }
                }
                Err(_) => return,
            },
            Some("Unbanned") => match msg.body().deserialize::<(String, String)>() {
                Ok((jail, address)) => {
                    if self.json {
                        json!({"event": "unbanned", "time_usec": now, "jail": jail,
                               "address": address})
                        .to_string()
                    } else {
                        format!("{} unbanned {jail} {address}", local_time(now))
                    }
                }
                Err(_) => return,
            },
            _ => return,
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

impl From<serde_json::Error> for Failure {
    fn from(e: serde_json::Error) -> Self {
        Failure::Failed(format!("cannot encode JSON: {e}"))
    }
}

/// Fetch every page of a paged list.
async fn page_all<F, Fut>(mut fetch: F) -> Result<Vec<BanRecord>, Failure>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<BanRecord>, u32), Error>>,
{
    let mut out = Vec::new();
    loop {
        let offset = u32::try_from(out.len()).unwrap_or(u32::MAX);
        let (page, total) = fetch(offset).await?;
        let n = page.len();
        out.extend(page);
        if n == 0 || out.len() >= total as usize {
            return Ok(out);
        }
    }
}

/// One jail's properties.
#[derive(Debug, Clone, Serialize)]
struct JailStatus {
    name: String,
    enabled: bool,
    filter: String,
    max_retry: u32,
    /// Seconds.
    find_time: u64,
    /// Seconds; -1 = permanent.
    ban_time: i64,
    currently_failed: u32,
    total_failed: u64,
    currently_banned: u32,
    total_banned: u64,
}

impl JailStatus {
    fn from_props(mut m: HashMap<String, OwnedVariant>) -> Option<JailStatus> {
        fn take<T: TryFrom<OwnedVariant>>(
            m: &mut HashMap<String, OwnedVariant>,
            k: &str,
        ) -> Option<T> {
            T::try_from(m.remove(k)?).ok()
        }
        Some(JailStatus {
            name: take(&mut m, "Name")?,
            enabled: take(&mut m, "Enabled")?,
            filter: take(&mut m, "Filter")?,
            max_retry: take(&mut m, "MaxRetry")?,
            find_time: take(&mut m, "FindTime")?,
            ban_time: take(&mut m, "BanTime")?,
            currently_failed: take(&mut m, "CurrentlyFailed")?,
            total_failed: take(&mut m, "TotalFailed")?,
            currently_banned: take(&mut m, "CurrentlyBanned")?,
            total_banned: take(&mut m, "TotalBanned")?,
        })
    }
}

fn ban_table(bans: &[BanRecord], with_jail: bool) -> Table {
    let mut head = vec![];
    if with_jail {
        head.push("JAIL");
    }
    head.extend(["ADDRESS", "BANNED AT", "UNTIL", "COUNT", "FAILURES"]);
    let mut t = Table::new(&head);
    for b in bans {
        let mut row = vec![];
        if with_jail {
            row.push(b.jail.clone());
        }
        row.push(b.address.clone());
        row.push(local_time(b.start_usec));
        row.push(if b.end_usec == 0 {
            "permanent".into()
        } else {
            local_time(b.end_usec)
        });
        row.push(b.count.to_string());
        row.push(b.failures.to_string());
        t.row(row);
    }
    t
}

/// A plain text table with columns sized to their content.
struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(head: &[&str]) -> Table {
        Table {
            rows: vec![head.iter().map(|s| s.to_string()).collect()],
        }
    }

    fn row(&mut self, r: Vec<String>) {
        self.rows.push(r);
    }

    fn print(&self) {
        let cols = self.rows[0].len();
        let widths: Vec<usize> = (0..cols)
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = std::io::stdout().lock();
        for r in &self.rows {
            let mut line = String::new();
            for (c, cell) in r.iter().enumerate() {
                if c + 1 == r.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
}

fn print_json<T: Serialize + ?Sized>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("f2b: cannot encode JSON: {e}"),
    }
}

fn state(enabled: bool) -> &'static str {
    if enabled {
        "enabled"
    } else {
        "disabled"
    }
}

fn dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn now_usec() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// `YYYY-MM-DD HH:MM:SS` in local time.
fn local_time(usec: u64) -> String {
    let secs = (usec / 1_000_000) as libc::time_t;
    // SAFETY: `tm` is plain data; localtime_r only writes into it and returns null on error.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    if !ok {
        return format!("@{secs}");
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// The next item of a stream (without pulling in a stream-extension crate).
async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unban_words() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            ClientCommand::unban(w(&["sshd", "203.0.113.9"]), false).unwrap(),
            ClientCommand::Unban {
                jail: Some("sshd".into()),
                addrs: w(&["203.0.113.9"]),
                all: false
            }
        );
        assert_eq!(
            ClientCommand::unban(w(&["203.0.113.9", "203.0.113.10"]), false).unwrap(),
            ClientCommand::Unban {
                jail: None,
                addrs: w(&["203.0.113.9", "203.0.113.10"]),
                all: false
            }
        );
        assert_eq!(
            ClientCommand::unban(w(&["sshd"]), true).unwrap(),
            ClientCommand::Unban {
                jail: Some("sshd".into()),
                addrs: vec![],
                all: true
            }
        );
        assert!(ClientCommand::unban(vec![], false).is_err());
        assert!(ClientCommand::unban(w(&["a", "b"]), true).is_err());
    }

    #[test]
    fn errors_are_sorted() {
        let f: Failure = Error::NotAuthorized("uid 65534 is not authorized".into()).into();
        assert_eq!(f.code(), EXIT_DENIED);
        let Failure::Denied(m) = f else { panic!() };
        assert!(m.starts_with("permission denied: uid 65534"), "{m}");
        assert!(m.contains("org.f2b.manage"));
        let f: Failure = Error::NoSuchJail("no such jail: x".into()).into();
        assert_eq!(f.code(), EXIT_FAILURE);
    }

    #[test]
    fn times() {
        assert_eq!(local_time(0).len(), 19);
    }
}
