//! Reading the state: [`Store::load`] (start of day) and [`Store::history_detail`].

use std::collections::HashMap;
use std::path::Path;

use ipnet::IpNet;
use rusqlite::{params, Row};

use super::codec::{time_from_sql, time_to_sql, NetKey};
use super::error::{corrupt, sql};
use super::origin::OriginCache;
use super::{
    BanRow, HistoryEntry, HistoryRow, JailId, OutboxRow, Snapshot, Store, StoreError, Totals,
    WindowRow, JOURNAL_POSITION,
};

/// Interns jail names while loading.
#[derive(Default)]
struct Jails {
    ids: HashMap<Box<str>, JailId>,
    names: Vec<String>,
}

impl Jails {
    fn id(&mut self, name: &str) -> JailId {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = JailId(self.names.len() as u32);
        self.ids.insert(name.into(), id);
        self.names.push(name.to_string());
        id
    }
}

/// Run `each` over the rows of `query`; SQL errors become [`StoreError`]s saying `what`.
fn for_each_row(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
    what: &'static str,
    query: &str,
    args: impl rusqlite::Params,
    mut each: impl FnMut(&Row<'_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(query).map_err(sql(path, what))?;
    let mut rows = stmt.query(args).map_err(sql(path, what))?;
    while let Some(r) = rows.next().map_err(sql(path, what))? {
        each(r)?;
    }
    Ok(())
}

/// SQLite's page cache during a load, KiB: a load reads each page once, so caching them
/// would only hold a second copy of the state in memory beside the snapshot.
const LOAD_CACHE_KIB: i64 = 1 << 10;

impl Store {
    /// Everything to restore at start of day: the positions (journal cursor), the bans active
    /// at `now_us` (end after it, or permanent), all history (oldest first), all open windows
    /// and the totals. One read transaction, with a small page cache that is released after.
    pub fn load(&self, now_us: u64) -> Result<Snapshot, StoreError> {
        let path = &self.path;
        let e = "cannot set the cache size";
        self.conn
            .pragma_update(None, "cache_size", -LOAD_CACHE_KIB)
            .map_err(sql(path, e))?;
        let snap = self.read_snapshot(now_us);
        self.conn
            .pragma_update(None, "cache_size", -super::CACHE_KIB)
            .map_err(sql(path, e))?;
        self.conn
            .execute_batch("PRAGMA shrink_memory")
            .map_err(sql(path, "cannot release memory"))?;
        snap
    }

    fn read_snapshot(&self, now_us: u64) -> Result<Snapshot, StoreError> {
        let path = &self.path;
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(sql(path, "cannot begin the load"))?;
        let mut snap = Snapshot::default();
        let mut jails = Jails::default();
        let mut origins = OriginCache::default();

        let e = "cannot load the positions";
        for_each_row(
            &tx,
            path,
            e,
            "SELECT source, value FROM positions",
            [],
            |r| {
                let (source, value) = (|| Ok((r.get(0)?, r.get(1)?)))().map_err(sql(path, e))?;
                snap.positions.insert(source, value);
                Ok(())
            },
        )?;
        snap.cursor = snap.positions.get(JOURNAL_POSITION).cloned();

        let e = "cannot load the bans";
        let q = "SELECT jail, addr, plen, start_us, end_us, count, failures, origin FROM bans
                 WHERE end_us IS NULL OR end_us > ?1";
        for_each_row(&tx, path, e, q, [time_to_sql(now_us)], |r| {
            let (jail, addr, plen, start, end, count, failures, origin) = (|| {
                Ok::<_, rusqlite::Error>((
                    r.get_ref(0)?.as_str()?,
                    r.get_ref(1)?.as_blob()?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get_ref(7)?.as_str()?,
                ))
            })()
            .map_err(sql(path, e))?;
            let bad = |what: &str| corrupt(path, "bans", format!("{what} in ban of jail {jail}"));
            snap.bans.push(BanRow {
                net: NetKey::decode(addr, plen).ok_or_else(|| bad("bad address"))?,
                start_us: time_from_sql(start).ok_or_else(|| bad("negative start"))?,
                end_us: match end {
                    Some(v) => Some(time_from_sql(v).ok_or_else(|| bad("negative end"))?),
                    None => None,
                },
                count: u32::try_from(count).map_err(|_| bad("count out of range"))?,
                failures: u32::try_from(failures).map_err(|_| bad("failures out of range"))?,
                origin: origins.parse(origin).map_err(|o| bad(&o.to_string()))?,
                jail: jails.id(jail),
            });
            Ok(())
        })?;

        // In key order (no index lookups), sorted by time below.
        let q = "SELECT addr, plen, jail, t_us, origin FROM history";
        for_each_row(&tx, path, "cannot load the history", q, [], |r| {
            let (net, jail, t_us, origin) = history_row(r, path, &mut origins)?;
            snap.history.push(HistoryRow {
                net,
                jail: jails.id(jail),
                t_us,
                origin,
            });
            Ok(())
        })?;
        snap.history.sort_by_key(|h| h.t_us);

        // In key order: each window's rows are together, its times ascending.
        let e = "cannot load the failure windows";
        let q = "SELECT jail, addr, plen, t_us, n FROM failures";
        for_each_row(&tx, path, e, q, [], |r| {
            let (jail, addr, plen, t, n) = (|| {
                Ok::<_, rusqlite::Error>((
                    r.get_ref(0)?.as_str()?,
                    r.get_ref(1)?.as_blob()?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })()
            .map_err(sql(path, e))?;
            let bad = |what: &str| corrupt(path, "failures", format!("{what} in jail {jail}"));
            let net = NetKey::decode(addr, plen).ok_or_else(|| bad("bad address"))?;
            let t = time_from_sql(t).ok_or_else(|| bad("negative time"))?;
            let n = usize::try_from(n)
                .ok()
                .filter(|n| (1..=1 << 20).contains(n))
                .ok_or_else(|| bad("bad repeat count"))?;
            let jail = jails.id(jail);
            let w = match snap.windows.last_mut() {
                Some(w) if w.jail == jail && w.net == net => w,
                _ => {
                    snap.windows.push(WindowRow {
                        jail,
                        net,
                        times: Vec::new(),
                    });
                    snap.windows.last_mut().expect("just pushed")
                }
            };
            w.times.extend(std::iter::repeat_n(t, n));
            Ok(())
        })?;

        let e = "cannot load the totals";
        let q = "SELECT jail, failed, banned, ignored FROM counters";
        for_each_row(&tx, path, e, q, [], |r| {
            let (jail, failed, banned, ignored) = (|| {
                Ok::<_, rusqlite::Error>((
                    r.get_ref(0)?.as_str()?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })()
            .map_err(sql(path, e))?;
            let count = |v: i64| {
                u64::try_from(v).map_err(|_| {
                    corrupt(path, "counters", format!("negative total in jail {jail}"))
                })
            };
            let totals = Totals {
                failed: count(failed)?,
                banned: count(banned)?,
                ignored: count(ignored)?,
            };
            snap.totals.push((jails.id(jail), totals));
            Ok(())
        })?;

        let e = "cannot load the outbox";
        let q = "SELECT id, sink, created_us, ready, attempts, next_us, payload FROM outbox
                 ORDER BY id";
        for_each_row(&tx, path, e, q, [], |r| {
            let row = (|| {
                Ok::<_, rusqlite::Error>(OutboxRow {
                    id: r.get::<_, i64>(0)?.max(0) as u64,
                    sink: r.get(1)?,
                    created_us: time_from_sql(r.get(2)?).unwrap_or(0),
                    ready: r.get::<_, i64>(3)? != 0,
                    attempts: u32::try_from(r.get::<_, i64>(4)?).unwrap_or(u32::MAX),
                    next_us: time_from_sql(r.get(5)?).unwrap_or(0),
                    payload: r.get(6)?,
                })
            })()
            .map_err(sql(path, e))?;
            snap.outbox_next_id = snap.outbox_next_id.max(row.id + 1);
            snap.outbox.push(row);
            Ok(())
        })?;
        let max: Option<i64> = tx
            .query_row("SELECT max(id) FROM outbox", [], |r| r.get(0))
            .map_err(sql(path, e))?;
        snap.outbox_next_id = snap
            .outbox_next_id
            .max(max.map_or(0, |m| m.max(0) as u64 + 1));
        tx.finish().map_err(sql(path, "cannot end the load"))?;
        snap.jails = jails.names;
        Ok(snap)
    }

    /// Past bans of `net`, as (jail, start µs), oldest first: the bans recorded for `net`
    /// itself, for every prefix containing it (an address's /24 or /64), and for every prefix
    /// inside it. See [`Store::history_detail`] for which net each entry is of.
    pub fn history_of(&self, net: IpNet) -> Result<Vec<(String, u64)>, StoreError> {
        Ok(self
            .history_detail(net)?
            .into_iter()
            .map(|h| (h.jail, h.t_us))
            .collect())
    }

    /// [`Store::history_of`] with the net each entry was recorded for and its origin, ordered
    /// by time, then jail, then net.
    pub fn history_detail(&self, net: IpNet) -> Result<Vec<HistoryEntry>, StoreError> {
        let path = &self.path;
        let e = "cannot read the history";
        let net = net.trunc();
        let mut out = Vec::new();
        let mut origins = OriginCache::default();
        let mut push = |r: &Row<'_>| -> Result<(), StoreError> {
            let (net, jail, t_us, origin) = history_row(r, path, &mut origins)?;
            out.push(HistoryEntry {
                net,
                jail: jail.to_string(),
                t_us,
                origin,
            });
            Ok(())
        };
        // Prefixes containing `net` (and `net` itself): one exact lookup per prefix length.
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT addr, plen, jail, t_us, origin FROM history WHERE addr = ?1 AND plen = ?2",
            )
            .map_err(sql(path, e))?;
        for plen in 0..=net.prefix_len() {
            let outer = IpNet::new(net.network(), plen)
                .expect("shorter prefix is valid")
                .trunc();
            let key = NetKey::of(&outer);
            let mut rows = stmt
                .query(params![key.addr(), key.plen])
                .map_err(sql(path, e))?;
            while let Some(r) = rows.next().map_err(sql(path, e))? {
                push(r)?;
            }
        }
        // Prefixes inside `net`: one range scan.
        let lo = NetKey::of(&net);
        let hi = NetKey::broadcast_of(&net);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT addr, plen, jail, t_us, origin FROM history
                 WHERE addr BETWEEN ?1 AND ?2 AND length(addr) = ?3 AND plen > ?4",
            )
            .map_err(sql(path, e))?;
        let mut rows = stmt
            .query(params![
                lo.addr(),
                hi.addr(),
                lo.addr().len() as i64,
                net.prefix_len()
            ])
            .map_err(sql(path, e))?;
        while let Some(r) = rows.next().map_err(sql(path, e))? {
            push(r)?;
        }
        out.sort_by(|a, b| (a.t_us, &a.jail, a.net).cmp(&(b.t_us, &b.jail, b.net)));
        Ok(out)
    }
}

/// One history row (`addr, plen, jail, t_us, origin`): (net, jail, t, origin).
fn history_row<'r>(
    r: &'r Row<'_>,
    path: &Path,
    origins: &mut OriginCache,
) -> Result<(IpNet, &'r str, u64, super::Origin), StoreError> {
    let e = "cannot read the history";
    let (addr, plen, jail, t, origin) = (|| {
        Ok::<_, rusqlite::Error>((
            r.get_ref(0)?.as_blob()?,
            r.get::<_, i64>(1)?,
            r.get_ref(2)?.as_str()?,
            r.get::<_, i64>(3)?,
            r.get_ref(4)?.as_str()?,
        ))
    })()
    .map_err(sql(path, e))?;
    let bad = |what: &str| corrupt(path, "history", format!("{what} in jail {jail}"));
    let net = NetKey::decode(addr, plen).ok_or_else(|| bad("bad address"))?;
    let t = time_from_sql(t).ok_or_else(|| bad("negative time"))?;
    let origin = origins.parse(origin).map_err(|o| bad(&o.to_string()))?;
    Ok((net, jail, t, origin))
}
