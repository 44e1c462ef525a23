//! `[fleet]`: sharing bans with other f2b hosts through NATS JetStream (issue 17).
//!
//! Validated here into a [`FleetConfig`]; the sharing itself is [`crate::fleet`]. Every problem
//! names the file, line and key. Nothing here touches the system: the default `host` (the
//! system's host name) is filled in by the daemon ([`FleetConfig::host_or`]).

use std::time::Duration;

use super::duration::{from_raw as dur, BanTime};
use super::error::Problems;
use super::fragments::Merged;
use super::limits;
use super::raw::{MergedJail, Val};
use crate::location::Location;

/// The jail that takes peer bans of jails this host does not run (see [`FleetConfig`]).
pub const FLEET_JAIL: &str = "fleet";
/// Default stream name.
pub const DEFAULT_STREAM: &str = "F2B";
/// Default largest (shortest) prefixes accepted from a peer: /24 and /48.
pub const DEFAULT_MAX_PREFIX_V4: u8 = 24;
pub const DEFAULT_MAX_PREFIX_V6: u8 = 48;
/// Default bans accepted per peer per minute (of the stream's publish time).
pub const DEFAULT_MAX_BANS_PER_MINUTE: u32 = 1000;
/// Default longest peer ban: a week (a permanent peer ban is cut to it).
pub const DEFAULT_MAX_BANTIME: Duration = Duration::from_secs(7 * 86_400);

/// How this host authenticates to the NATS servers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FleetAuth {
    /// A NATS `.creds` file (JWT and nkey seed).
    pub creds_file: Option<String>,
    /// User name, with its password read from `password_file`.
    pub user: Option<(String, String)>,
    /// TLS client certificate and key (PEM).
    pub tls_cert: Option<(String, String)>,
    /// CA certificate(s) that sign the servers' certificates (PEM).
    pub tls_ca: Option<String>,
}

/// The validated `[fleet]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetConfig {
    /// NATS server URLs (`nats://10.0.0.1:4222`, `tls://…`).
    pub servers: Vec<String>,
    /// This host's name in the fleet (a NATS subject token); `None` = the system's host name
    /// up to its first dot.
    pub host: Option<String>,
    pub auth: FleetAuth,
    /// Jails whose bans are published; `None` = all.
    pub share: Option<Vec<String>>,
    /// Peers whose bans are applied; `None` = all.
    pub accept: Option<Vec<String>>,
    /// JetStream stream name.
    pub stream: String,
    /// Shortest IPv4 / IPv6 prefix length accepted from a peer.
    pub max_prefix_v4: u8,
    pub max_prefix_v6: u8,
    /// Peer bans applied per peer per minute at most; the excess is refused and counted.
    pub max_bans_per_peer_per_minute: u32,
    /// Longest peer ban applied (longer and permanent ones are cut to it).
    pub max_bantime: Duration,
    /// Copies of the stream a NATS cluster keeps (when this host creates it): 1–5.
    pub replicas: usize,
    /// Where `[fleet]` was written.
    pub loc: Location,
}

impl FleetConfig {
    /// Whether `jail`'s bans are published.
    pub fn shares(&self, jail: &str) -> bool {
        self.share
            .as_ref()
            .is_none_or(|s| s.iter().any(|j| j == jail))
    }

    /// Whether bans of peer `host` are applied.
    pub fn accepts(&self, host: &str) -> bool {
        self.accept
            .as_ref()
            .is_none_or(|a| a.iter().any(|h| h == host))
    }

    /// This host's fleet name: `host`, else `system` (the system's host name) up to its
    /// first dot. An error when that is not a valid name.
    pub fn host_or(&self, system: &str) -> Result<String, String> {
        let h = match &self.host {
            Some(h) => h.clone(),
            None => system.split('.').next().unwrap_or(system).to_string(),
        };
        host_name(&h).map(str::to_string).map_err(|e| {
            format!(
                "{}: fleet: host: {e} (set host = \"NAME\" in [fleet])",
                self.loc
            )
        })
    }
}

/// A host name in the fleet: 1–64 characters of `[A-Za-z0-9_-]` (it is a token of NATS
/// subjects `f2b.HOST.JAIL.EVENT`, and appears in origins `peer:HOST`).
pub fn host_name(name: &str) -> Result<&str, String> {
    let plain = (name.chars()).all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if (1..=64).contains(&name.len()) && plain {
        Ok(name)
    } else {
        Err(format!(
            "{:?} is not a fleet host name: use 1–64 characters of [A-Za-z0-9_-]",
            name.chars().take(80).collect::<String>()
        ))
    }
}

/// `[fleet]` validated (`None` when absent), every problem into `problems`.
pub(super) fn resolve(m: &Merged, problems: &mut Problems) -> Option<FleetConfig> {
    let f = &m.fleet;
    let decl = m.fleet_decl.clone()?;
    let mut bad = |loc: &Location, key: &str, msg: String| {
        problems.invalid(loc.clone(), format!("fleet: {key}: {msg}"));
    };
    let servers = match &f.servers {
        Some(v) if v.v.is_empty() => {
            bad(
                &v.loc,
                "servers",
                "at least one server URL is needed".into(),
            );
            Vec::new()
        }
        Some(v) => {
            for s in &v.v {
                if let Err(e) = server_url(s) {
                    bad(&v.loc, "servers", e);
                }
            }
            v.v.clone()
        }
        None => {
            bad(
                &decl,
                "servers",
                "missing (e.g. servers = [\"nats://10.0.0.1:4222\"])".into(),
            );
            Vec::new()
        }
    };
    if let Some(h) = &f.host {
        if let Err(e) = host_name(&h.v) {
            bad(&h.loc, "host", e);
        }
    }
    let stream = match &f.stream {
        Some(s) if !stream_name(&s.v) => {
            bad(
                &s.loc,
                "stream",
                format!("{:?}: use 1–32 characters of [A-Za-z0-9_-]", s.v),
            );
            DEFAULT_STREAM.to_string()
        }
        Some(s) => s.v.clone(),
        None => DEFAULT_STREAM.to_string(),
    };
    let auth = auth(f, &mut bad);
    let share = f.share.as_ref().map(|v| {
        for j in &v.v {
            if !m.jails.contains_key(j) {
                bad(&v.loc, "share", format!("{j:?} is not a jail"));
            }
        }
        v.v.clone()
    });
    let accept = f.accept.as_ref().map(|v| {
        for h in &v.v {
            if let Err(e) = host_name(h) {
                bad(&v.loc, "accept", e);
            }
        }
        v.v.clone()
    });
    let prefix =
        |v: &Option<Val<i64>>, v6: bool, def: u8, bad: &mut dyn FnMut(&Location, &str, String)| {
            let key = if v6 { "max_prefix_v6" } else { "max_prefix_v4" };
            match v {
                Some(x) => limits::prefix_len(x.v, v6).unwrap_or_else(|e| {
                    bad(&x.loc, key, e.to_string());
                    def
                }),
                None => def,
            }
        };
    let max_prefix_v4 = prefix(&f.max_prefix_v4, false, DEFAULT_MAX_PREFIX_V4, &mut bad);
    let max_prefix_v6 = prefix(&f.max_prefix_v6, true, DEFAULT_MAX_PREFIX_V6, &mut bad);
    let max_bans_per_peer_per_minute = match &f.max_bans_per_peer_per_minute {
        Some(x) => match u32::try_from(x.v) {
            Ok(n) if n >= 1 => n,
            _ => {
                bad(
                    &x.loc,
                    "max_bans_per_peer_per_minute",
                    format!("{} is not in 1..={}", x.v, u32::MAX),
                );
                DEFAULT_MAX_BANS_PER_MINUTE
            }
        },
        None => DEFAULT_MAX_BANS_PER_MINUTE,
    };
    let max_bantime = match &f.max_bantime {
        Some(x) => match dur(&x.v, false) {
            Ok(BanTime::For(d)) if !d.is_zero() => d.min(Duration::from_secs(limits::MAX_SECONDS)),
            Ok(_) => {
                bad(&x.loc, "max_bantime", "must be longer than 0".into());
                DEFAULT_MAX_BANTIME
            }
            Err(e) => {
                bad(&x.loc, "max_bantime", e);
                DEFAULT_MAX_BANTIME
            }
        },
        None => DEFAULT_MAX_BANTIME,
    };
    let replicas = match &f.replicas {
        Some(x) if (1..=5).contains(&x.v) => x.v as usize,
        Some(x) => {
            bad(&x.loc, "replicas", format!("{} is not in 1..=5", x.v));
            1
        }
        None => 1,
    };
    Some(FleetConfig {
        replicas,
        servers,
        host: f.host.as_ref().map(|h| h.v.clone()),
        auth,
        share,
        accept,
        stream,
        max_prefix_v4,
        max_prefix_v6,
        max_bans_per_peer_per_minute,
        max_bantime,
        loc: decl,
    })
}

fn auth(f: &super::raw::MergedFleet, bad: &mut impl FnMut(&Location, &str, String)) -> FleetAuth {
    let mut a = FleetAuth {
        creds_file: f.creds_file.as_ref().map(|v| v.v.clone()),
        ..FleetAuth::default()
    };
    match (&f.user, &f.password_file) {
        (Some(u), Some(p)) => a.user = Some((u.v.clone(), p.v.clone())),
        (Some(u), None) => bad(&u.loc, "user", "needs password_file".into()),
        (None, Some(p)) => bad(&p.loc, "password_file", "needs user".into()),
        (None, None) => {}
    }
    match (&f.tls_cert, &f.tls_key) {
        (Some(c), Some(k)) => a.tls_cert = Some((c.v.clone(), k.v.clone())),
        (Some(c), None) => bad(&c.loc, "tls_cert", "needs tls_key".into()),
        (None, Some(k)) => bad(&k.loc, "tls_key", "needs tls_cert".into()),
        (None, None) => {}
    }
    a.tls_ca = f.tls_ca.as_ref().map(|v| v.v.clone());
    if let (Some(c), Some(u)) = (&f.creds_file, &f.user) {
        let _ = u;
        bad(
            &c.loc,
            "creds_file",
            "give either creds_file or user + password_file, not both".into(),
        );
    }
    a
}

/// `nats://HOST:PORT`, `tls://…` or `HOST:PORT`.
fn server_url(s: &str) -> Result<(), String> {
    let rest = s
        .strip_prefix("nats://")
        .or_else(|| s.strip_prefix("tls://"))
        .unwrap_or(s);
    let ok = !rest.is_empty()
        && !rest.contains(char::is_whitespace)
        && !rest.contains('/')
        && s.parse::<async_nats::ServerAddr>().is_ok();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a server URL (nats://HOST:PORT or tls://HOST:PORT)"
        ))
    }
}

fn stream_name(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The jail that takes peer bans of jails this host does not run: `[jail.fleet]` as declared
/// (it must say `source = "fleet"`), else one made over `[defaults]` (every port, the default
/// action, `[defaults]`' ignoreip).
pub(super) fn fleet_jail(m: &Merged) -> Option<(MergedJail, Location)> {
    let decl = m.fleet_decl.clone()?;
    if m.jails.contains_key(FLEET_JAIL) {
        return None;
    }
    let val = |v| Val {
        v,
        loc: decl.clone(),
    };
    let j = MergedJail {
        source: Some(val("fleet".to_string())),
        enabled: Some(Val {
            v: true,
            loc: decl.clone(),
        }),
        // Peers' bans may be for any service: the fleet jail blocks every port unless
        // [jail.fleet] says otherwise.
        ports: Some(Val {
            v: Vec::new(),
            loc: decl.clone(),
        }),
        ..MergedJail::default()
    };
    Some((j, decl))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load_str, LoadOptions};

    fn opts() -> LoadOptions {
        LoadOptions {
            no_system_filters: true,
            ..LoadOptions::default()
        }
    }

    #[test]
    fn defaults_and_the_fleet_jail() {
        let s = load_str(
            "f.toml",
            "[fleet]\nservers = [\"nats://10.0.0.1:4222\"]\n",
            &opts(),
        )
        .unwrap();
        let f = s.fleet.as_ref().unwrap();
        assert_eq!(f.stream, "F2B");
        assert_eq!((f.max_prefix_v4, f.max_prefix_v6), (24, 48));
        assert!(f.shares("sshd") && f.accepts("any"));
        assert_eq!(f.host_or("web1.example.com").unwrap(), "web1");
        let j = s.jail(FLEET_JAIL).unwrap();
        assert!(j.enabled);
        assert_eq!(j.source, crate::config::JailSource::Fleet);
        assert!(j.rules.ports.is_empty());
    }

    #[test]
    fn every_problem_names_its_line() {
        let e = load_str(
            "f.toml",
            "[fleet]\nservers = [\"http://x/\"]\nhost = \"a.b\"\nmax_prefix_v4 = 40\n\
             user = \"u\"\nshare = [\"nope\"]\naccept = [\"bad host\"]\nmax_bantime = \"soon\"\n\
             stream = \"a.b\"\nmax_bans_per_peer_per_minute = 0\ncolour = 1\n",
            &opts(),
        )
        .unwrap_err()
        .to_string();
        for want in [
            "f.toml:2: fleet: servers:",
            "f.toml:3: fleet: host:",
            "f.toml:4: fleet: max_prefix_v4:",
            "f.toml:5: fleet: user: needs password_file",
            "f.toml:6: fleet: share: \"nope\" is not a jail",
            "f.toml:7: fleet: accept:",
            "f.toml:8: fleet: max_bantime:",
            "f.toml:9: fleet: stream:",
            "f.toml:10: fleet: max_bans_per_peer_per_minute:",
            "f.toml:11: unknown key \"colour\" in [fleet]",
        ] {
            assert!(e.contains(want), "{want} missing in:\n{e}");
        }
        let e = load_str("f.toml", "[fleet]\nhost = \"a\"\n", &opts())
            .unwrap_err()
            .to_string();
        assert!(e.contains("f.toml:1: fleet: servers: missing"), "{e}");
    }

    #[test]
    fn a_declared_fleet_jail_must_read_the_fleet() {
        let e = load_str(
            "f.toml",
            "[fleet]\nservers = [\"nats://n:4222\"]\n[jail.fleet]\nenabled = true\n",
            &opts(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("f.toml:3: jail fleet: filter: unknown filter"),
            "{e}"
        );
        let s = load_str(
            "f.toml",
            "[fleet]\nservers = [\"nats://n:4222\"]\n[jail.fleet]\nenabled = true\nsource = \"fleet\"\nports = [22]\n",
            &opts(),
        )
        .unwrap();
        assert_eq!(s.jail(FLEET_JAIL).unwrap().rules.ports.len(), 1);
    }
}
