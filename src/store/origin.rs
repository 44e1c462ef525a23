//! [`Origin`]: who or what made a ban — stored with every ban and history entry.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Who or what made a ban. Stored as text (`local`, `manual`, `manual:UID`, `peer:HOST`,
/// `import`) in the `origin` column of `bans` and `history`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// Decided by a jail of this host from its own log entries.
    #[default]
    Local,
    /// Ordered by hand (`f2b ban`, D-Bus `Ban`), by the user `uid` when known.
    Manual { uid: Option<u32> },
    /// Received from the fleet peer of this host name (issue 17).
    Peer(Arc<str>),
    /// Imported (e.g. from a fail2ban database, issue 15).
    Import,
}

/// Text that is not an [`Origin`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ban origin {0:?} (expected local, manual, manual:UID, peer:HOST or import)")]
pub struct BadOrigin(pub String);

impl Origin {
    /// A peer origin; `None` if `host` is empty, longer than 255 bytes, or holds whitespace or
    /// control characters.
    pub fn peer(host: &str) -> Option<Origin> {
        let ok = !host.is_empty()
            && host.len() <= 255
            && !host.chars().any(|c| c.is_whitespace() || c.is_control());
        ok.then(|| Origin::Peer(host.into()))
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Local => f.write_str("local"),
            Origin::Manual { uid: None } => f.write_str("manual"),
            Origin::Manual { uid: Some(uid) } => write!(f, "manual:{uid}"),
            Origin::Peer(host) => write!(f, "peer:{host}"),
            Origin::Import => f.write_str("import"),
        }
    }
}

impl FromStr for Origin {
    type Err = BadOrigin;

    fn from_str(s: &str) -> Result<Origin, BadOrigin> {
        let bad = || BadOrigin(s.to_string());
        match s {
            "local" => Ok(Origin::Local),
            "manual" => Ok(Origin::Manual { uid: None }),
            "import" => Ok(Origin::Import),
            _ => {
                if let Some(uid) = s.strip_prefix("manual:") {
                    // Digits only: no sign, no spaces (u32's parser takes a leading '+').
                    if !uid.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(bad());
                    }
                    let uid = uid.parse().map_err(|_| bad())?;
                    Ok(Origin::Manual { uid: Some(uid) })
                } else if let Some(host) = s.strip_prefix("peer:") {
                    Origin::peer(host).ok_or_else(bad)
                } else {
                    Err(bad())
                }
            }
        }
    }
}

/// Parses origins as they are loaded, sharing one allocation per peer host.
#[derive(Default)]
pub(crate) struct OriginCache {
    peers: Vec<Origin>,
}

impl OriginCache {
    pub fn parse(&mut self, s: &str) -> Result<Origin, BadOrigin> {
        if s == "local" {
            return Ok(Origin::Local);
        }
        if let Some(host) = s.strip_prefix("peer:") {
            if let Some(o) = self
                .peers
                .iter()
                .find(|o| matches!(o, Origin::Peer(h) if &**h == host))
            {
                return Ok(o.clone());
            }
            let o: Origin = s.parse()?;
            self.peers.push(o.clone());
            return Ok(o);
        }
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_round_trip_as_text() {
        for o in [
            Origin::Local,
            Origin::Manual { uid: None },
            Origin::Manual { uid: Some(0) },
            Origin::Manual {
                uid: Some(u32::MAX),
            },
            Origin::peer("web-2.example.org").unwrap(),
            Origin::Import,
        ] {
            let text = o.to_string();
            assert_eq!(text.parse::<Origin>(), Ok(o.clone()), "{text}");
            assert_eq!(OriginCache::default().parse(&text), Ok(o), "{text}");
        }
        assert_eq!(Origin::default().to_string(), "local");
        assert_eq!(
            Origin::Manual { uid: Some(1000) }.to_string(),
            "manual:1000"
        );
    }

    #[test]
    fn bad_origins_are_refused() {
        for s in [
            "",
            "Local",
            "manual:",
            "manual:+5",
            "manual:-1",
            "manual:4294967296",
            "manual: 5",
            "peer:",
            "peer:a b",
            "peer:a\nb",
            "fleet",
        ] {
            let e = s.parse::<Origin>().unwrap_err();
            assert_eq!(e, BadOrigin(s.to_string()));
            assert!(e.to_string().contains("invalid ban origin"), "{e}");
        }
        assert_eq!(Origin::peer(""), None);
    }

    #[test]
    fn the_cache_shares_peer_hosts() {
        let mut c = OriginCache::default();
        let (Origin::Peer(a), Origin::Peer(b)) =
            (c.parse("peer:h1").unwrap(), c.parse("peer:h1").unwrap())
        else {
            panic!("not peers");
        };
        assert!(Arc::ptr_eq(&a, &b));
        assert!(c.parse("peer:").is_err());
    }
}
