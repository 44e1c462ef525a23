//! fail2ban's database (`fail2ban.sqlite3`, schema 4+) → f2b's state: the latest ban of each
//! address per jail (`bips`: still running ones become active bans with their end and ban
//! count) and the ban history (`bans`, within f2b's history age), so that the bans stay and
//! incremental ban times continue where fail2ban was.
//!
//! fail2ban purges its history after `dbpurgeage` (a day by default) but keeps the ban count
//! in `bips`; where the history is shorter than the count, entries are added just before the
//! latest ban so that f2b counts the same number of earlier bans.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use rusqlite::{Connection, OpenFlags};

use super::report::{Kind, Report};
use super::ImportError;
use crate::store::{Commit, StoredBan};

/// An imported jail: its f2b name and its ban time (for bans whose time fail2ban lost).
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    /// Seconds; `None` = permanent.
    pub bantime: Option<u64>,
}

/// What the database gave.
#[derive(Debug, Clone, Default)]
pub struct Imported {
    pub commit: Commit,
    pub active: usize,
    pub expired: usize,
    pub history: usize,
    pub added_history: usize,
}

const S: u64 = 1_000_000;

fn db_err(path: &Path, e: impl std::fmt::Display) -> ImportError {
    ImportError::Database {
        path: path.to_path_buf(),
        msg: e.to_string(),
    }
}

fn parse_net(ip: &str) -> Option<IpNet> {
    ip.parse::<IpAddr>()
        .map(IpNet::from)
        .ok()
        .or_else(|| ip.parse::<IpNet>().ok().map(|n| n.trunc()))
}

/// Read the database. `jails` maps fail2ban jail names to what they became.
pub fn read(
    path: &Path,
    jails: &BTreeMap<String, Target>,
    now_us: u64,
    history_max_age_s: u64,
    report: &mut Report,
) -> Result<Imported, ImportError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| db_err(path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| db_err(path, e))?;
    let version: i64 = conn
        .query_row("SELECT version FROM fail2banDb LIMIT 1", [], |r| r.get(0))
        .map_err(|e| db_err(path, format!("not a fail2ban database ({e})")))?;
    if version < 4 {
        return Err(db_err(
            path,
            format!("schema version {version} has no bips table: start fail2ban 0.11 or later once to upgrade it"),
        ));
    }
    let subject = format!("database {}", path.display());
    let mut out = Imported::default();
    let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
    let now_s = now_us / S;
    let since = now_s.saturating_sub(history_max_age_s);

    // History first: the synthesized entries below fill up to the ban counts.
    let mut hist: BTreeMap<(String, IpNet), Vec<u64>> = BTreeMap::new();
    let mut stmt = conn
        .prepare("SELECT jail, ip, timeofban FROM bans WHERE timeofban >= ?1")
        .map_err(|e| db_err(path, e))?;
    let rows = stmt
        .query_map([since as i64], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(|e| db_err(path, e))?;
    for row in rows {
        let (jail, ip, t) = row.map_err(|e| db_err(path, e))?;
        let (Some(target), Some(net)) = (jails.get(&jail), parse_net(&ip)) else {
            *skipped.entry(jail).or_default() += 1;
            continue;
        };
        hist.entry((target.name.clone(), net))
            .or_default()
            .push(t.max(0) as u64);
    }
    drop(stmt);

    let mut stmt = conn
        .prepare("SELECT ip, jail, timeofban, bantime, bancount, data FROM bips")
        .map_err(|e| db_err(path, e))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                match r.get::<_, rusqlite::types::Value>(5)? {
                    rusqlite::types::Value::Text(t) => Some(t),
                    rusqlite::types::Value::Blob(b) => String::from_utf8(b).ok(),
                    _ => None,
                },
            ))
        })
        .map_err(|e| db_err(path, e))?;
    for row in rows {
        let (ip, jail, tob, bantime, count, data) = row.map_err(|e| db_err(path, e))?;
        let Some(target) = jails.get(&jail) else {
            *skipped.entry(jail).or_default() += 1;
            continue;
        };
        let Some(net) = parse_net(&ip) else {
            report.add(
                Kind::NotImported,
                &subject,
                None,
                format!("ban of {ip:?} in {jail}: not an address (a failure id); f2b bans addresses only"),
            );
            continue;
        };
        let tob = tob.max(0) as u64;
        let end_s = match bantime {
            b if b <= -2 => target.bantime.map(|b| tob + b),
            -1 => None,
            b => Some(tob + b as u64),
        };
        if bantime <= -2 {
            report.add(
                Kind::Mapped,
                &subject,
                None,
                format!("ban of {ip} in {jail}: fail2ban lost its ban time; the jail's is used"),
            );
        }
        let count = u32::try_from(count.max(1)).unwrap_or(u32::MAX);
        // Earlier bans up to the count, so that the next ban is counted as fail2ban would.
        if tob >= since {
            let h = hist.entry((target.name.clone(), net)).or_default();
            let mut known = h.iter().filter(|&&t| t <= tob).count() as u32;
            if !h.contains(&tob) {
                h.push(tob);
                known += 1;
                out.added_history += 1;
            }
            for k in 0..count.saturating_sub(known) {
                h.push(tob.saturating_sub(u64::from(k) + 1));
                out.added_history += 1;
            }
        }
        if end_s.is_some_and(|e| e <= now_s) {
            out.expired += 1;
            continue;
        }
        let failures = data
            .as_deref()
            .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
            .and_then(|v| v.get("failures").and_then(|f| f.as_u64()))
            .map(|f| u32::try_from(f).unwrap_or(u32::MAX))
            .unwrap_or(0);
        out.commit.bans_added.push(StoredBan {
            jail: target.name.clone(),
            net,
            start_us: tob * S,
            end_us: end_s.map(|e| e * S),
            count,
            failures,
            origin: crate::store::Origin::Import,
        });
        out.active += 1;
    }
    for ((jail, net), times) in hist {
        for t in times {
            out.commit.history_added.push(crate::store::HistoryEntry {
                net,
                jail: jail.clone(),
                t_us: t * S,
                origin: crate::store::Origin::Import,
            });
        }
    }
    out.commit.history_added.sort();
    out.commit.history_added.dedup();
    out.history = out.commit.history_added.len();
    for (jail, n) in skipped {
        report.add(
            Kind::NotImported,
            &subject,
            None,
            format!("{n} ban record(s) of jail {jail}: the jail is not imported (or not enabled)"),
        );
    }
    Ok(out)
}
