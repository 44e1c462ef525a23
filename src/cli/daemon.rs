//! The commands that ask f2bd over D-Bus: status, bans, history (anyone), ban, unban, reload,
//! start, stop, set (root or polkit). `f2b monitor` is in [`super::monitor`].

use std::io::Write;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use serde_json::json;

use super::args::{Setting, UnbanTarget};
use super::client::{page_all, Client, JailStatus};
use super::render::{self, count, dash, field, local_time, state, until, Table};
use super::{report, CliError};
use crate::config::{format_duration, BanTime};
use crate::dbus::{self, BanRecord};
use crate::engine::host_text;

/// Where a command writes, and how.
pub struct Out<'a> {
    pub w: &'a mut dyn Write,
    pub json: bool,
}

/// `f2b status`: one line per jail.
pub async fn status_all(c: &Client, out: Out<'_>) -> Result<(), CliError> {
    let names = c.manager().await?.list_jails().await?;
    let mut jails = Vec::new();
    for n in &names {
        match c.jail_status(n).await {
            Ok(s) => jails.push(s),
            // Removed by a reload in between: skip it.
            Err(CliError::NoSuchJail(_)) => {}
            Err(f) => return Err(f),
        }
    }
    if out.json {
        return render::json(out.w, &jails);
    }
    if jails.is_empty() {
        writeln!(out.w, "no jails configured")?;
        return Ok(());
    }
    let mut t = Table::new(&[
        "JAIL",
        "STATE",
        "FILTER",
        "FAILING",
        "FAILURES",
        "TOTAL FAILURES",
        "BANNED",
        "TOTAL BANNED",
    ]);
    for j in &jails {
        t.row(vec![
            j.name.clone(),
            state(j.enabled).into(),
            dash(&j.filter),
            j.currently_failed.to_string(),
            j.current_failures.to_string(),
            j.total_failed.to_string(),
            j.currently_banned.to_string(),
            j.total_banned.to_string(),
        ]);
    }
    t.write(out.w)?;
    actions(c, out.w).await
}

/// The actions' delivery counters under `f2b status` (nothing when there are none).
async fn actions(c: &Client, w: &mut dyn Write) -> Result<(), CliError> {
    let list = c.manager().await?.get_actions().await?;
    if list.is_empty() {
        return Ok(());
    }
    writeln!(w)?;
    let mut t = Table::new(&[
        "ACTION", "TYPE", "SENT", "FAILED", "DROPPED", "PENDING", "RETRIES",
    ]);
    for a in list {
        t.row(vec![
            a.name,
            a.kind,
            a.sent.to_string(),
            a.failed.to_string(),
            a.dropped.to_string(),
            a.pending.to_string(),
            a.retries.to_string(),
        ]);
    }
    Ok(t.write(w)?)
}

/// `f2b status JAIL`: what the jail enforces, its counters and its bans.
pub async fn status_jail(c: &Client, name: &str, out: Out<'_>) -> Result<(), CliError> {
    let s = c.jail_status(name).await?;
    let jail = c.jail(name).await?;
    let bans = page_all(|off, n| {
        let jail = jail.clone();
        async move { jail.list_bans(off, n).await }
    })
    .await?;
    // (A daemon from before file jails has no GetLogFiles: no files.)
    let files = jail.get_log_files().await.unwrap_or_default();
    if out.json {
        let mut v = serde_json::to_value(&s)?;
        v["bans"] = serde_json::to_value(&bans)?;
        v["log_files"] = serde_json::to_value(
            (files.iter())
                .map(|(path, state, lines, failures)| {
                    json!({"path": path, "state": state, "lines": lines, "failures": failures})
                })
                .collect::<Vec<_>>(),
        )?;
        return render::json(out.w, &v);
    }
    let w = out.w;
    let secs = |s: u64| format_duration(Duration::from_secs(s));
    field(w, "Jail", &s.name)?;
    field(w, "State", state(s.enabled))?;
    field(w, "Filter", &dash(&s.filter))?;
    field(w, "Max retry", &s.max_retry.to_string())?;
    field(w, "Find time", &secs(s.find_time))?;
    let bantime = match u64::try_from(s.ban_time) {
        Ok(t) => secs(t),
        Err(_) => "permanent".into(),
    };
    field(w, "Ban time", &bantime)?;
    field(w, "Ban increments", &increments(&s))?;
    field(w, "Ports", &ports(&s))?;
    field(w, "Action", &dash(&s.action))?;
    field(w, "Ignored", &ignored(&s))?;
    let prefixes = format!("IPv4 /{}, IPv6 /{}", s.ipv4_prefix, s.ipv6_prefix);
    field(w, "Counted per", &prefixes)?;
    field(w, "Failing addresses", &s.currently_failed.to_string())?;
    let failures = format!("{} (within the find time)", s.current_failures);
    field(w, "Failures", &failures)?;
    field(w, "Total failures", &s.total_failed.to_string())?;
    field(w, "Currently banned", &s.currently_banned.to_string())?;
    field(w, "Total banned", &s.total_banned.to_string())?;
    if !files.is_empty() {
        field(w, "Log files", "")?;
        let mut t = Table::new(&["FILE", "STATE", "LINES", "FAILURES"]);
        for (path, state, lines, failures) in &files {
            t.row(vec![
                path.clone(),
                state.clone(),
                lines.to_string(),
                failures.to_string(),
            ]);
        }
        t.indent(2).write(w)?;
    }
    if bans.is_empty() {
        field(w, "Banned addresses", "none")?;
    } else {
        field(w, "Banned addresses", "")?;
        ban_table(&bans, false).indent(2).write(w)?;
    }
    Ok(())
}

fn increments(s: &JailStatus) -> String {
    if !s.ban_time_increment {
        return "no".into();
    }
    let mut parts = vec![if s.ban_time_multipliers.is_empty() {
        format!("factor {} doubling per previous ban", s.ban_time_factor)
    } else {
        let m: Vec<String> = s.ban_time_multipliers.iter().map(f64::to_string).collect();
        format!("multipliers {}", m.join(", "))
    }];
    if s.ban_time_max_time > 0 {
        parts.push(format!(
            "at most {}",
            format_duration(Duration::from_secs(s.ban_time_max_time))
        ));
    }
    if s.ban_time_rnd_time > 0 {
        parts.push(format!(
            "plus up to {} at random",
            format_duration(Duration::from_secs(s.ban_time_rnd_time))
        ));
    }
    parts.push(
        if s.ban_time_overall_jails {
            "counting bans in every jail"
        } else {
            "counting bans in this jail"
        }
        .into(),
    );
    if s.ban_time_fast_rebans {
        parts.push("fast rebans".into());
    }
    parts.join(", ")
}

fn ports(s: &JailStatus) -> String {
    match (s.ports.is_empty(), s.protocol.as_str()) {
        (true, "all" | "") => "all ports, all protocols".into(),
        (true, p) => format!("all ports ({p})"),
        (false, p) => format!("{} ({p})", s.ports.join(", ")),
    }
}

fn ignored(s: &JailStatus) -> String {
    let mut list = s.ignore_ip.join(", ");
    if s.ignore_self {
        if list.is_empty() {
            list = "the host's own addresses".into();
        } else {
            list.push_str(", and the host's own addresses");
        }
    }
    dash(&list)
}

fn ban_table(bans: &[BanRecord], with_jail: bool) -> Table {
    let mut head = vec![];
    if with_jail {
        head.push("JAIL");
    }
    head.extend([
        "ADDRESS",
        "BANNED AT",
        "UNTIL",
        "COUNT",
        "FAILURES",
        "ORIGIN",
    ]);
    let mut t = Table::new(&head);
    for b in bans {
        let mut row = vec![];
        if with_jail {
            row.push(b.jail.clone());
        }
        row.extend([
            b.address.clone(),
            local_time(b.start_usec),
            until(b.end_usec),
            b.count.to_string(),
            b.failures.to_string(),
            b.origin.clone(),
        ]);
        t.row(row);
    }
    t
}

/// `f2b ban JAIL ADDR [--for DURATION] [--force]`.
pub async fn ban(
    c: &Client,
    jail: &str,
    addr: &IpNet,
    for_: Option<Duration>,
    force: bool,
    out: Out<'_>,
) -> Result<(), CliError> {
    let addr = host_text(addr);
    let seconds = for_.map_or(0, |d| d.as_secs());
    let m = c.manager().await?;
    let end = if force {
        let opts = std::collections::HashMap::from([("force", zbus::Variant::from(true))]);
        m.ban_with_options(jail, &addr, seconds, opts).await?
    } else {
        m.ban(jail, &addr, seconds).await?
    };
    if out.json {
        return render::json(
            out.w,
            &json!({"jail": jail, "address": addr, "until_usec": end}),
        );
    }
    if end == 0 {
        writeln!(out.w, "banned {addr} in {jail} permanently")?;
    } else {
        writeln!(out.w, "banned {addr} in {jail} until {}", local_time(end))?;
    }
    Ok(())
}

/// `f2b unban`. Goes on after an address f2bd refuses (and exits 1 at the end).
pub async fn unban(c: &Client, target: UnbanTarget, out: Out<'_>) -> Result<u8, CliError> {
    let m = c.manager().await?;
    let jail_arg = target.jail.clone().unwrap_or_default();
    let where_ = match &target.jail {
        Some(j) => format!("jail {j}"),
        None => "any jail".into(),
    };
    if target.all {
        let n = m.unban_all(&jail_arg).await?;
        if out.json {
            render::json(out.w, &json!({"jail": target.jail, "unbanned": n}))?;
        } else {
            let where_ = target
                .jail
                .map_or("every jail".into(), |j| format!("jail {j}"));
            writeln!(out.w, "lifted {} in {where_}", count(n, "ban", "bans"))?;
        }
        return Ok(super::EXIT_OK);
    }
    let mut code = super::EXIT_OK;
    let mut results = Vec::new();
    for net in &target.addrs {
        let a = host_text(net);
        match m.unban(&jail_arg, &a).await.map_err(CliError::from) {
            Ok(n) => {
                if !out.json {
                    if n == 0 {
                        writeln!(out.w, "{a} was not banned in {where_}")?;
                    } else {
                        writeln!(out.w, "unbanned {a} ({} lifted)", count(n, "ban", "bans"))?;
                    }
                }
                results.push(json!({"address": a, "unbanned": n}));
            }
            // Refused for this address: say so, go on with the others.
            Err(e @ CliError::Refused(_)) => {
                code = code.max(report(&e));
                results.push(json!({"address": a, "error": e.to_string()}));
            }
            // Anything else would repeat for every address.
            Err(e) => return Err(e),
        }
    }
    if out.json {
        render::json(out.w, &json!({"jail": target.jail, "results": results}))?;
    }
    Ok(code)
}

/// `f2b bans [JAIL]`.
pub async fn bans(c: &Client, jail: Option<String>, out: Out<'_>) -> Result<(), CliError> {
    let jail = jail.unwrap_or_default();
    let m = c.manager().await?;
    let bans = page_all(|off, n| {
        let (m, jail) = (m.clone(), jail.clone());
        async move { m.get_bans(&jail, off, n).await }
    })
    .await?;
    if out.json {
        render::json(out.w, &bans)
    } else if bans.is_empty() {
        Ok(writeln!(out.w, "no active bans")?)
    } else {
        Ok(ban_table(&bans, true).write(out.w)?)
    }
}

/// `f2b reload`.
pub async fn reload(c: &Client, out: Out<'_>) -> Result<(), CliError> {
    let (added, removed, changed, unchanged) = match c.manager().await?.reload().await {
        Ok(r) => r,
        Err(e @ dbus::Error::InvalidConfig(_)) => return Err(CliError::Reload(e)),
        Err(e) => return Err(e.into()),
    };
    if out.json {
        return render::json(
            out.w,
            &json!({"added": added, "removed": removed, "changed": changed, "unchanged": unchanged}),
        );
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
        writeln!(out.w, "reloaded (no jails)")?;
    } else {
        writeln!(out.w, "reloaded; {}", parts.join("; "))?;
    }
    Ok(())
}

/// `f2b history ADDR`.
pub async fn history(c: &Client, addr: IpAddr, out: Out<'_>) -> Result<(), CliError> {
    let list = c.manager().await?.get_history(&addr.to_string()).await?;
    if out.json {
        render::json(out.w, &list)
    } else if list.is_empty() {
        Ok(writeln!(out.w, "{addr} has no past bans")?)
    } else {
        let mut t = Table::new(&["JAIL", "BANNED AT"]);
        for h in &list {
            t.row(vec![h.jail.clone(), local_time(h.start_usec)]);
        }
        Ok(t.write(out.w)?)
    }
}

/// `f2b start JAIL` / `f2b stop JAIL`.
pub async fn start_stop(
    c: &Client,
    jail: &str,
    start: bool,
    w: &mut dyn Write,
) -> Result<(), CliError> {
    let p = c.existing_jail(jail).await?;
    if start {
        p.start().await?;
    } else {
        p.stop().await?;
    }
    writeln!(w, "{} {jail}", if start { "started" } else { "stopped" })?;
    Ok(())
}

/// `f2b set JAIL SETTING VALUE`.
pub async fn set(
    c: &Client,
    jail: &str,
    setting: Setting,
    w: &mut dyn Write,
) -> Result<(), CliError> {
    let p = c.existing_jail(jail).await?;
    let (name, value) = match setting {
        Setting::Maxretry { value } => {
            p.set_max_retry(value).await?;
            ("maxretry", value.to_string())
        }
        Setting::Findtime { value } => {
            p.set_find_time(value.as_secs()).await?;
            ("findtime", format_duration(value))
        }
        Setting::Bantime { value } => {
            let (secs, text) = match value {
                BanTime::For(d) => (d.as_secs() as i64, format_duration(d)),
                BanTime::Forever => (-1, "forever".into()),
            };
            p.set_ban_time(secs).await?;
            ("bantime", text)
        }
    };
    writeln!(w, "{jail}: {name} = {value}")?;
    Ok(())
}
