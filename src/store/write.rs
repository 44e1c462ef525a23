//! Writing the state: [`Store::commit_many`] (one transaction per group of commits) and
//! [`Store::purge`].

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{params, Connection, TransactionBehavior};

use super::codec::{time_to_sql, NetKey};
use super::error::sql;
use super::{Commit, Durability, PurgeStats, Store, StoreError, JOURNAL_POSITION};

impl Store {
    /// Write `c` in one transaction (see [`Commit`] for the order within it).
    pub fn commit(&mut self, c: &Commit) -> Result<(), StoreError> {
        self.commit_many([c], Durability::Normal)
    }

    /// Write several commits in ONE transaction, applying them in order (a later position
    /// wins; a ban added by one and removed by a later one ends up removed, and vice versa).
    /// With `durability` above the store's, this transaction is fsync'd before it returns.
    pub fn commit_many<'a>(
        &mut self,
        commits: impl IntoIterator<Item = &'a Commit>,
        durability: Durability,
    ) -> Result<(), StoreError> {
        let path = &self.path;
        let raise = durability > self.durability;
        if raise {
            self.conn
                .pragma_update(None, "synchronous", durability.pragma())
                .map_err(sql(path, "cannot set synchronous"))?;
        }
        let result = apply_all(&mut self.conn, path, commits);
        if raise {
            self.conn
                .pragma_update(None, "synchronous", self.durability.pragma())
                .map_err(sql(path, "cannot set synchronous"))?;
        }
        if let Ok(true) = result {
            self.transactions += 1;
        }
        result.map(drop)
    }

    /// Delete history older than `history_older_than_us`, bans that ended at or before
    /// `now_us`, and failures older than `history_older_than_us` (the caller passes its history
    /// horizon, `now − dbpurgeage`, which is far beyond any findtime; the engine trims windows
    /// itself as failures lapse, so this only catches leaks). One transaction.
    pub fn purge(
        &mut self,
        history_older_than_us: u64,
        now_us: u64,
    ) -> Result<PurgeStats, StoreError> {
        let path = &self.path;
        let e = "cannot purge";
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql(path, e))?;
        let horizon = time_to_sql(history_older_than_us);
        let stats = PurgeStats {
            history: tx
                .execute("DELETE FROM history WHERE t_us < ?1", [horizon])
                .map_err(sql(path, e))?,
            bans: tx
                .execute(
                    "DELETE FROM bans WHERE end_us IS NOT NULL AND end_us <= ?1",
                    [time_to_sql(now_us)],
                )
                .map_err(sql(path, e))?,
            failures: tx
                .execute("DELETE FROM failures WHERE t_us < ?1", [horizon])
                .map_err(sql(path, e))?,
        };
        tx.commit().map_err(sql(path, e))?;
        self.transactions += 1;
        // Keep the planner's statistics fresh; cheap when nothing changed much.
        self.conn
            .execute_batch("PRAGMA optimize")
            .map_err(sql(path, "cannot optimize"))?;
        Ok(stats)
    }
}

/// Apply `commits` in order in one IMMEDIATE transaction. `Ok(false)` if there was nothing
/// to write (no transaction).
fn apply_all<'a>(
    conn: &mut Connection,
    path: &Path,
    commits: impl IntoIterator<Item = &'a Commit>,
) -> Result<bool, StoreError> {
    let e = "cannot commit";
    let mut commits = commits.into_iter().filter(|c| !c.is_empty()).peekable();
    if commits.peek().is_none() {
        return Ok(false);
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql(path, e))?;
    // Positions only ever overwrite each other: write each source's last value once.
    let mut positions: BTreeMap<&str, Option<&str>> = BTreeMap::new();
    for c in commits {
        apply(&tx, c).map_err(sql(path, e))?;
        for (source, value) in &c.positions {
            positions.insert(source, value.as_deref());
        }
        if let Some(cursor) = &c.cursor {
            positions.insert(JOURNAL_POSITION, Some(cursor));
        }
    }
    if !positions.is_empty() {
        let mut set = tx
            .prepare_cached(
                "INSERT INTO positions (source, value) VALUES (?1, ?2)
                 ON CONFLICT (source) DO UPDATE SET value = excluded.value",
            )
            .map_err(sql(path, e))?;
        let mut delete = tx
            .prepare_cached("DELETE FROM positions WHERE source = ?1")
            .map_err(sql(path, e))?;
        for (source, value) in positions {
            match value {
                Some(v) => set.execute([source, v]),
                None => delete.execute([source]),
            }
            .map_err(sql(path, e))?;
        }
    }
    tx.commit().map_err(sql(path, e))?;
    Ok(true)
}

/// One commit's statements, in the documented order (positions are written by the caller).
fn apply(tx: &rusqlite::Transaction<'_>, c: &Commit) -> rusqlite::Result<()> {
    if !c.jails_removed.is_empty() {
        let mut bans = tx.prepare_cached("DELETE FROM bans WHERE jail = ?1")?;
        let mut failures = tx.prepare_cached("DELETE FROM failures WHERE jail = ?1")?;
        let mut totals = tx.prepare_cached("DELETE FROM counters WHERE jail = ?1")?;
        for jail in &c.jails_removed {
            bans.execute([jail])?;
            failures.execute([jail])?;
            totals.execute([jail])?;
        }
    }
    if !c.bans_removed.is_empty() {
        let mut s =
            tx.prepare_cached("DELETE FROM bans WHERE jail = ?1 AND addr = ?2 AND plen = ?3")?;
        for (jail, net) in &c.bans_removed {
            let k = NetKey::of(net);
            s.execute(params![jail, k.addr(), k.plen])?;
        }
    }
    if !c.bans_added.is_empty() {
        let mut s = tx.prepare_cached(
            "INSERT INTO bans (jail, addr, plen, start_us, end_us, count, failures, origin)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (jail, addr, plen) DO UPDATE SET
                start_us = excluded.start_us, end_us = excluded.end_us,
                count = excluded.count, failures = excluded.failures,
                origin = excluded.origin",
        )?;
        for b in &c.bans_added {
            let k = NetKey::of(&b.net);
            s.execute(params![
                b.jail,
                k.addr(),
                k.plen,
                time_to_sql(b.start_us),
                b.end_us.map(time_to_sql),
                b.count,
                b.failures,
                b.origin.to_string(),
            ])?;
        }
    }
    if !c.windows_cleared.is_empty() {
        let mut s =
            tx.prepare_cached("DELETE FROM failures WHERE jail = ?1 AND addr = ?2 AND plen = ?3")?;
        for (jail, net) in &c.windows_cleared {
            let k = NetKey::of(net);
            s.execute(params![jail, k.addr(), k.plen])?;
        }
    }
    if !c.failures_added.is_empty() {
        let mut s = tx.prepare_cached(
            "INSERT INTO failures (jail, addr, plen, t_us, n) VALUES (?1, ?2, ?3, ?4, 1)
             ON CONFLICT (jail, addr, plen, t_us) DO UPDATE SET n = n + 1",
        )?;
        for (jail, net, t) in &c.failures_added {
            let k = NetKey::of(net);
            s.execute(params![jail, k.addr(), k.plen, time_to_sql(*t)])?;
        }
    }
    if !c.windows_trimmed.is_empty() {
        let mut s = tx.prepare_cached(
            "DELETE FROM failures WHERE jail = ?1 AND addr = ?2 AND plen = ?3 AND t_us < ?4",
        )?;
        for (jail, net, older_than) in &c.windows_trimmed {
            let k = NetKey::of(net);
            s.execute(params![jail, k.addr(), k.plen, time_to_sql(*older_than)])?;
        }
    }
    if !c.history_added.is_empty() {
        let mut s = tx.prepare_cached(
            "INSERT OR IGNORE INTO history (addr, plen, jail, t_us, origin)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for h in &c.history_added {
            let k = NetKey::of(&h.net);
            s.execute(params![
                k.addr(),
                k.plen,
                h.jail,
                time_to_sql(h.t_us),
                h.origin.to_string()
            ])?;
        }
    }
    if !c.outbox_added.is_empty() {
        let mut s = tx.prepare_cached(
            "INSERT OR REPLACE INTO outbox (id, sink, created_us, ready, attempts, next_us, payload)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for o in &c.outbox_added {
            s.execute(params![
                i64::try_from(o.id).unwrap_or(i64::MAX),
                o.sink,
                time_to_sql(o.created_us),
                i64::from(o.ready),
                i64::from(o.attempts),
                time_to_sql(o.next_us),
                o.payload
            ])?;
        }
    }
    if !c.outbox_released.is_empty() {
        let mut s = tx.prepare_cached("UPDATE outbox SET ready = 1 WHERE id = ?1")?;
        for id in &c.outbox_released {
            s.execute([i64::try_from(*id).unwrap_or(i64::MAX)])?;
        }
    }
    if !c.outbox_deferred.is_empty() {
        let mut s =
            tx.prepare_cached("UPDATE outbox SET attempts = ?2, next_us = ?3 WHERE id = ?1")?;
        for (id, attempts, next) in &c.outbox_deferred {
            s.execute(params![
                i64::try_from(*id).unwrap_or(i64::MAX),
                i64::from(*attempts),
                time_to_sql(*next)
            ])?;
        }
    }
    if !c.outbox_removed.is_empty() {
        let mut s = tx.prepare_cached("DELETE FROM outbox WHERE id = ?1")?;
        for id in &c.outbox_removed {
            s.execute([i64::try_from(*id).unwrap_or(i64::MAX)])?;
        }
    }
    if !c.history_removed.is_empty() {
        let mut s = tx.prepare_cached(
            "DELETE FROM history WHERE addr = ?1 AND plen = ?2 AND jail = ?3 AND t_us = ?4",
        )?;
        for h in &c.history_removed {
            let k = NetKey::of(&h.net);
            s.execute(params![k.addr(), k.plen, h.jail, time_to_sql(h.t_us)])?;
        }
    }
    if c.totals_added.iter().any(|(_, t)| !t.is_zero()) {
        let mut s = tx.prepare_cached(
            "INSERT INTO counters (jail, failed, banned, ignored) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (jail) DO UPDATE SET
                failed = failed + excluded.failed, banned = banned + excluded.banned,
                ignored = ignored + excluded.ignored",
        )?;
        for (jail, t) in c.totals_added.iter().filter(|(_, t)| !t.is_zero()) {
            s.execute(params![
                jail,
                time_to_sql(t.failed),
                time_to_sql(t.banned),
                time_to_sql(t.ignored)
            ])?;
        }
    }
    Ok(())
}
