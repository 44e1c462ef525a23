//! Jails: failures per address within `findtime`, ban decisions, incremental ban times.
//!
//! Pure logic with the clock passed in. The clock is the journal timestamp of the entry
//! (microseconds since the epoch), so replaying an old journal gives exactly the decisions a
//! live run made. Nothing here does I/O.

mod bans;
mod history;
mod lines;
mod windows;

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use bans::Bans;
pub use history::{History, Past};
use lines::Lines;
pub use lines::{MAX_LINES, MAX_LINE_BYTES};
use windows::Windows;
pub use windows::{Times, TimesIter};

use crate::addr::{overlaps, unbannable};
pub use crate::clock::usecs;
use crate::config::{BanTime, IgnoreList, JailConfig};

/// Addresses a jail tracks (open failure windows) at most, by default; the oldest windows
/// are dropped first beyond it (a distributed attack must not exhaust memory).
pub const DEFAULT_MAX_TRACKED: usize = 100_000;

/// Who ordered a ban.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Origin {
    /// This host's jail, from failures it saw.
    #[default]
    Local,
    /// By hand over D-Bus (`f2b ban`): the caller's uid and, when known, user name.
    Manual { uid: u32, user: Option<String> },
    /// Another host of the fleet.
    Peer(String),
    /// Carried over from fail2ban's database.
    Import,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Local => f.write_str("local"),
            Origin::Manual { uid, user: Some(u) } => write!(f, "{u} (uid {uid})"),
            Origin::Manual { uid, user: None } => write!(f, "uid {uid}"),
            Origin::Peer(h) => write!(f, "peer {h}"),
            Origin::Import => f.write_str("the fail2ban import"),
        }
    }
}

impl From<&Origin> for crate::store::Origin {
    fn from(o: &Origin) -> crate::store::Origin {
        match o {
            Origin::Local => crate::store::Origin::Local,
            Origin::Manual { uid, .. } => crate::store::Origin::Manual { uid: Some(*uid) },
            Origin::Peer(h) => crate::store::Origin::Peer(h.as_str().into()),
            Origin::Import => crate::store::Origin::Import,
        }
    }
}

impl From<&crate::store::Origin> for OriginKind {
    fn from(o: &crate::store::Origin) -> OriginKind {
        match o {
            crate::store::Origin::Local => OriginKind::Local,
            crate::store::Origin::Manual { .. } => OriginKind::Manual,
            crate::store::Origin::Peer(_) => OriginKind::Peer,
            crate::store::Origin::Import => OriginKind::Import,
        }
    }
}

impl Origin {
    /// Whether a ban of this origin counts as a repeat offence for incremental ban times
    /// and recidive (a ban by hand says nothing about the address's behaviour here, and a
    /// fleet peer's ban is the peer's finding, not this host's).
    pub fn counts_as_offence(&self) -> bool {
        !matches!(self, Origin::Manual { .. } | Origin::Peer(_))
    }
}

/// A decision to ban, sent to the firewall and store.
#[derive(Debug, Clone, PartialEq)]
pub struct BanDecision {
    pub jail: String,
    /// What is banned: the address as /32 or /128, or its aggregated prefix.
    pub net: IpNet,
    /// Event time of the failure that triggered it (journal time, µs).
    pub start_us: u64,
    pub bantime: BanTime,
    /// `None` = permanent.
    pub end_us: Option<u64>,
    /// Failures counted in the window.
    pub failures: u32,
    /// The latest matched lines (at most ten).
    pub lines: Vec<String>,
    /// This is the n-th ban of the address (1 = first), as counted for increments.
    pub count: u32,
    pub origin: Origin,
    /// The jail's aggregation prefix was not banned because it holds an ignored or own
    /// address: this single address was banned instead.
    pub narrowed_from: Option<IpNet>,
}

/// An active ban as the jail knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveBan {
    pub start_us: u64,
    pub end_us: Option<u64>,
    pub count: u32,
    pub failures: u32,
    pub origin: OriginKind,
}

/// The kind of an [`Origin`], kept with each active ban (one byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OriginKind {
    #[default]
    Local,
    Manual,
    Peer,
    Import,
}

impl OriginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OriginKind::Local => "local",
            OriginKind::Manual => "manual",
            OriginKind::Peer => "peer",
            OriginKind::Import => "import",
        }
    }
}

impl From<&Origin> for OriginKind {
    fn from(o: &Origin) -> OriginKind {
        match o {
            Origin::Local => OriginKind::Local,
            Origin::Manual { .. } => OriginKind::Manual,
            Origin::Peer(_) => OriginKind::Peer,
            Origin::Import => OriginKind::Import,
        }
    }
}

impl ActiveBan {
    pub fn active_at(&self, t: u64) -> bool {
        self.end_us.is_none_or(|e| e > t)
    }
}

/// What became of one failure.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Counted; `failures` now in the window.
    Counted { failures: u32, needed: u32 },
    /// The address is in `ignoreip` (or is this host's own).
    Ignored,
    /// The address can never be a client (unspecified, loopback, multicast, broadcast).
    Unbannable(&'static str),
    /// The address is already banned in this jail.
    AlreadyBanned,
    /// The address reached the threshold.
    Ban(BanDecision),
}

/// Counters for status and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Failures counted, since the jail was first started (kept across restarts).
    pub total_failed: u64,
    /// Bans made, since the jail was first started (kept across restarts).
    pub total_banned: u64,
    /// Failures from ignored (or own, or unbannable) addresses.
    pub ignored: u64,
    /// Open windows dropped because the jail tracked `max_tracked` addresses already.
    pub evicted: u64,
}

/// One jail's state.
#[derive(Debug)]
pub struct Jail {
    pub cfg: JailConfig,
    /// Open failure windows (bounded by `max_tracked`).
    windows: Windows,
    /// The latest matched lines, for ban reports.
    lines: Lines,
    bans: Bans,
    pub counters: Counters,
    /// Addresses never banned besides `cfg.ignore` (this host's, when ignoreself).
    self_ignore: IgnoreList,
    /// This host's addresses: never inside a prefix ban, whatever ignoreself says.
    own: Vec<IpNet>,
    prune_at: usize,
    rng: u64,
    /// At most this many open windows.
    pub max_tracked: usize,
    /// The eviction was logged (once per jail).
    pub evicted_logged: bool,
}

impl Jail {
    pub fn new(cfg: JailConfig, self_addrs: &[IpNet]) -> Jail {
        let mut self_ignore = IgnoreList::default();
        if cfg.ignoreself {
            self_ignore.extend(self_addrs.iter().copied());
        }
        let rng = 0x9E37_79B9_7F4A_7C15
            ^ cfg
                .name
                .bytes()
                .fold(0u64, |h, b| h.rotate_left(5) ^ b as u64);
        Jail {
            max_tracked: cfg.max_tracked,
            cfg,
            windows: Windows::default(),
            lines: Lines::default(),
            bans: Bans::default(),
            counters: Counters::default(),
            self_ignore,
            own: self_addrs.to_vec(),
            prune_at: 1024,
            rng,
            evicted_logged: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// Replace the configuration (reload) keeping windows, bans and counters.
    pub fn reconfigure(&mut self, cfg: JailConfig, self_addrs: &[IpNet]) {
        let counters = self.counters;
        let windows = std::mem::take(&mut self.windows);
        let lines = std::mem::take(&mut self.lines);
        let bans = std::mem::take(&mut self.bans);
        let logged = self.evicted_logged;
        *self = Jail::new(cfg, self_addrs);
        self.counters = counters;
        self.windows = windows;
        self.lines = lines;
        self.bans = bans;
        self.evicted_logged = logged;
    }

    /// The unit an address is counted and banned as: its aggregation prefix, or the address
    /// alone when the prefix would hold an ignored or own address (see [`Jail::protected`]).
    pub fn key(&self, addr: IpAddr) -> IpNet {
        self.key_and_prefix(addr).0
    }

    /// [`Jail::key`], and the prefix that was not used because it is protected.
    pub fn key_and_prefix(&self, addr: IpAddr) -> (IpNet, Option<IpNet>) {
        let len = match addr {
            IpAddr::V4(_) => self.cfg.ipv4_prefix,
            IpAddr::V6(_) => self.cfg.ipv6_prefix,
        };
        let net = IpNet::new(addr, len)
            .expect("prefix validated by config")
            .trunc();
        if net.prefix_len() < net.max_prefix_len() && self.protected(&net) {
            (IpNet::from(addr), Some(net))
        } else {
            (net, None)
        }
    }

    /// Whether `net` holds (or is inside) an ignoreip network or one of this host's own
    /// addresses: such a prefix is never banned as a whole.
    pub fn protected(&self, net: &IpNet) -> bool {
        (self.cfg.ignore.nets().iter())
            .chain(self.own.iter())
            .chain(self.self_ignore.nets().iter())
            .any(|n| overlaps(n, net))
    }

    pub fn is_ignored(&self, addr: IpAddr) -> bool {
        self.cfg.ignore.contains(addr) || self.self_ignore.contains(addr)
    }

    /// Count one failure of `addr` at journal time `t` (µs).
    pub fn failure(&mut self, addr: IpAddr, t: u64, line: &str, history: &History) -> Verdict {
        if let Some(why) = unbannable(addr) {
            self.counters.ignored += 1;
            return Verdict::Unbannable(why);
        }
        if self.is_ignored(addr) {
            self.counters.ignored += 1;
            return Verdict::Ignored;
        }
        let (key, narrowed_from) = self.key_and_prefix(addr);
        if self.bans.covers(&key, t) {
            return Verdict::AlreadyBanned;
        }
        self.counters.total_failed += 1;
        if !self.windows.contains(&key) {
            self.make_room();
        }
        // A failure counts while it is less than findtime older than the newest one.
        let (failures, _) = self.windows.count(key, t, usecs(self.cfg.findtime));
        self.lines.push(key, t, line);
        let prior = self.prior_bans(key, t, history);
        let needed = self.needed(prior);
        if failures < needed {
            if self.windows.len() >= self.prune_at {
                self.prune(t);
            }
            return Verdict::Counted { failures, needed };
        }
        let since = (self.windows.remove(&key).iter())
            .flat_map(Times::iter)
            .copied()
            .min()
            .unwrap_or(t);
        let lines = self.lines.take(&key, since);
        let mut d = self.decide(key, t, failures, lines, prior);
        d.narrowed_from = narrowed_from;
        Verdict::Ban(d)
    }

    /// Make room for a new window when the jail tracks `max_tracked` addresses: the windows
    /// whose latest failure is oldest are dropped (see [`Windows::make_room`]).
    fn make_room(&mut self) {
        let n = self.windows.make_room(self.max_tracked);
        self.counters.evicted += n as u64;
    }

    fn prior_bans(&self, key: IpNet, t: u64, history: &History) -> u32 {
        match &self.cfg.increment {
            Some(inc) => {
                let jail = if inc.overall_jails {
                    None
                } else {
                    Some(self.cfg.name.as_str())
                };
                history.count_offences(key, jail, t)
            }
            None => 0,
        }
    }

    /// Failures needed to ban an address with `prior` earlier bans.
    pub fn needed(&self, prior: u32) -> u32 {
        match &self.cfg.increment {
            Some(inc) if inc.fast_rebans && prior > 0 => {
                (self.cfg.maxretry >> prior.min(31)).max(1)
            }
            _ => self.cfg.maxretry,
        }
    }

    /// Ban duration for the (prior+1)-th ban.
    pub fn bantime_for(&mut self, prior: u32) -> BanTime {
        let BanTime::For(base) = self.cfg.bantime else {
            return BanTime::Forever;
        };
        let Some(inc) = &self.cfg.increment else {
            return BanTime::For(base);
        };
        let mult = if inc.multipliers.is_empty() {
            inc.factor * f64::from(1u32 << prior.min(20))
        } else {
            inc.multipliers[(prior as usize).min(inc.multipliers.len() - 1)]
        };
        let mut secs = base.as_secs_f64() * mult;
        if let Some(max) = inc.maxtime {
            secs = secs.min(max.as_secs_f64());
        }
        let mut d = Duration::from_secs_f64(secs.clamp(1.0, 1e12));
        if !inc.rndtime.is_zero() {
            // xorshift: jitter needs no cryptographic quality.
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            d += Duration::from_micros(self.rng % usecs(inc.rndtime).max(1));
        }
        BanTime::For(d)
    }

    fn decide(
        &mut self,
        key: IpNet,
        t: u64,
        failures: u32,
        lines: Vec<String>,
        prior: u32,
    ) -> BanDecision {
        let bantime = self.bantime_for(prior);
        let end_us = bantime.as_duration().map(|d| t.saturating_add(usecs(d)));
        let count = prior + 1;
        self.bans.insert(
            key,
            ActiveBan {
                start_us: t,
                end_us,
                count,
                failures,
                origin: OriginKind::Local,
            },
        );
        self.counters.total_banned += 1;
        BanDecision {
            jail: self.cfg.name.clone(),
            net: key,
            start_us: t,
            bantime,
            end_us,
            failures,
            lines,
            count,
            origin: Origin::Local,
            narrowed_from: None,
        }
    }

    /// A ban ordered by hand (D-Bus, CLI): recorded like a decision. `None` duration = the
    /// jail's (incremented) bantime.
    pub fn manual_ban(
        &mut self,
        net: IpNet,
        t: u64,
        duration: Option<BanTime>,
        history: &History,
        origin: Origin,
    ) -> BanDecision {
        let prior = self.prior_bans(net, t, history);
        self.windows.remove(&net);
        self.lines.forget(&net);
        let mut d = self.decide(net, t, 0, Vec::new(), prior);
        // A ban by hand is not counted as a repeat offence (it keeps the count it had), and is
        // not a ban the jail's failures made.
        d.count = prior.max(1);
        if let Some(bt) = duration {
            d.bantime = bt;
            d.end_us = bt.as_duration().map(|x| t.saturating_add(usecs(x)));
        }
        self.bans.update(&net, |b| {
            b.count = d.count;
            b.origin = OriginKind::from(&origin);
            b.end_us = d.end_us;
        });
        d.origin = origin;
        d
    }

    /// Restore a ban known from the store (start of day). Keeps the longer of two.
    pub fn restore_ban(&mut self, net: IpNet, ban: ActiveBan) {
        let keep = match self.bans.get(&net) {
            Some(old) => match (old.end_us, ban.end_us) {
                (None, _) => false,
                (_, None) => true,
                (Some(a), Some(b)) => b > a,
            },
            None => true,
        };
        if keep {
            self.bans.insert(net, ban);
        }
    }

    /// Forget a ban (unban). Returns it if it was there.
    pub fn unban(&mut self, net: &IpNet) -> Option<ActiveBan> {
        self.bans.remove(net)
    }

    /// Remove and return bans whose end is at or before `t`.
    pub fn expire(&mut self, t: u64) -> Vec<(IpNet, ActiveBan)> {
        self.bans.expire(t)
    }

    /// The ban of `net` ended (timer): lift it, but keep its end so that failures logged
    /// before it (processed late) are still not counted.
    pub fn lift_expired(&mut self, net: &IpNet) -> Option<ActiveBan> {
        self.bans.lift(net)
    }

    /// The earliest end of an active ban.
    pub fn next_expiry(&self) -> Option<u64> {
        self.bans.next_end()
    }

    /// Drop windows whose newest failure is findtime old: bounds memory to active attackers.
    /// Lifted bans ended findtime before `t` are forgotten too (entries processed that late
    /// are not expected).
    pub fn prune(&mut self, t: u64) {
        let findtime = usecs(self.cfg.findtime);
        self.windows.prune(t, findtime);
        self.bans.prune(t.saturating_sub(findtime));
        self.prune_at = (self.windows.len() * 2).max(1024);
    }

    /// Room for `n` more bans (a restore knows how many come).
    pub fn reserve_bans(&mut self, n: usize) {
        self.bans.reserve(n);
    }

    pub fn bans(&self) -> impl Iterator<Item = (&IpNet, ActiveBan)> {
        self.bans.iter()
    }

    pub fn ban_of(&self, net: &IpNet) -> Option<ActiveBan> {
        self.bans.get(net)
    }

    pub fn banned_count(&self) -> usize {
        self.bans.len()
    }

    /// Addresses with failures in their window.
    pub fn failing_count(&self) -> usize {
        self.windows.len()
    }

    /// Open windows, for persistence: (key, failure times).
    pub fn windows(&self) -> impl Iterator<Item = (&IpNet, &Times)> {
        self.windows.iter()
    }

    /// Restore an open window (start of day).
    pub fn restore_window(&mut self, net: IpNet, times: Vec<u64>) {
        if !self.windows.contains(&net) {
            self.make_room();
        }
        self.windows.restore(net, times);
    }

    /// Failures currently counted in open windows (all addresses).
    pub fn failures_in_windows(&self) -> u64 {
        self.windows.failures()
    }

    /// The failure times currently counted for `net`.
    pub fn window_of(&self, net: &IpNet) -> Option<&Times> {
        self.windows.get(net)
    }
}

#[cfg(test)]
mod tests;
