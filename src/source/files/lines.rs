//! A line of a log file → the filters of the jails that read the file.
//!
//! With a syslog prefix (auth.log, mail.log …; [`crate::source::syslog`]) the ident selects
//! the jails whose filter names the program ([`crate::filter::FilterDef::selects_ident`]), and
//! the pid and time come from the prefix. Otherwise the whole line is the message, and its time
//! is the first of the filter's `datepattern` forms found in it, else the arrival time. A time
//! ahead of the wall clock by more than [`FUTURE_SLACK_US`] is taken as the arrival time: a line
//! cannot move a failure out of its window into the future.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::FileRoute;
use crate::clock::now_us;
use crate::filter::{EntryCtx, Sessions};
use crate::source::date::find_any;
use crate::source::syslog::SyslogParser;
use crate::source::{Batch, Hit, RouteStats};

/// How far ahead of the clock a line's own time may be (clock skew between hosts).
pub const FUTURE_SLACK_US: u64 = 60_000_000;

/// The routes and their per-route state.
pub(super) struct Dispatch {
    pub(super) routes: Arc<Vec<FileRoute>>,
    pub(super) generation: u64,
    sessions: Vec<Sessions>,
    stats: Vec<RouteStats>,
    /// Per (file, route): lines given to the filter, failures — since the last `take`.
    pub(super) per_file: HashMap<(Arc<str>, usize), (u64, u64)>,
    tz: TimeZone,
    parser: SyslogParser,
    now: u64,
}

fn fresh_stats(routes: &[FileRoute]) -> Vec<RouteStats> {
    routes
        .iter()
        .map(|r| RouteStats {
            per_regex: vec![0; r.filter.fail_count()],
            ..Default::default()
        })
        .collect()
}

impl Dispatch {
    pub(super) fn new(routes: Arc<Vec<FileRoute>>, generation: u64) -> Dispatch {
        let tz = TimeZone::system();
        Dispatch {
            sessions: routes.iter().map(|_| Sessions::default()).collect(),
            stats: fresh_stats(&routes),
            per_file: HashMap::new(),
            parser: SyslogParser::new(tz.clone(), Timestamp::now()),
            tz,
            now: now_us(),
            routes,
            generation,
        }
    }

    /// The clock (arrival time, year of syslog dates) for the lines read next.
    pub(super) fn tick(&mut self) {
        self.now = now_us();
        self.tz = TimeZone::system();
        self.parser = SyslogParser::new(self.tz.clone(), Timestamp::now());
    }

    pub(super) fn take_stats(&mut self) -> Vec<RouteStats> {
        std::mem::replace(&mut self.stats, fresh_stats(&self.routes))
    }

    /// One line of `file`, read by `routes`; lines older than `since` (µs) are skipped.
    pub(super) fn line(
        &mut self,
        file: &Arc<str>,
        routes: &[usize],
        bytes: &[u8],
        since: Option<u64>,
        batch: &mut Batch,
    ) {
        let text = String::from_utf8_lossy(bytes);
        let l = self.parser.parse(text.trim_end_matches('\r'));
        let msg = l.message.trim_end();
        let latest = self.now.saturating_add(FUTURE_SLACK_US);
        for &ri in routes {
            let route = &self.routes[ri];
            if l.ident.is_some_and(|i| !route.def.selects_ident(i)) {
                continue;
            }
            let t = l
                .time_us
                .or_else(|| find_any(&route.def.dates, msg, &self.tz))
                .filter(|t| *t <= latest)
                .unwrap_or(self.now);
            if since.is_some_and(|s| t < s) {
                continue;
            }
            batch.last_time_us = batch.last_time_us.max(t);
            let st = &mut self.stats[ri];
            st.seen += 1;
            let per = self.per_file.entry((file.clone(), ri)).or_default();
            per.0 += 1;
            if !route.filter.may_match(msg) {
                continue;
            }
            let ctx = EntryCtx {
                time_us: t,
                pid: l.pid,
                boot: 0,
            };
            // "message repeated N times: [ … ]" stands for N entries.
            for _ in 0..l.repeats {
                let out = route.filter.apply_entry(msg, &ctx, &mut self.sessions[ri]);
                let Some((regex, addr, user, counts)) = st.count(out, t) else {
                    continue;
                };
                per.1 += u64::from(counts);
                batch.hits.push(Hit {
                    route: ri,
                    addr,
                    user,
                    regex,
                    counts,
                    time_us: t,
                    message: msg.to_string(),
                    unit: None,
                    ident: l.ident.map(str::to_string),
                    hostname: l.host.map(str::to_string),
                    pid: l.pid,
                });
            }
        }
    }
}
