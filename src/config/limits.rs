//! The bounds every way into f2b shares: the configuration files, the D-Bus methods and
//! properties, and the `f2b` command line check jail names, counts, prefix lengths, durations
//! and ban targets with these functions, so that a value one of them accepts the others accept
//! too.

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use ipnet::IpNet;

/// Longest jail name. Jail names appear in nftables set names and D-Bus object paths.
pub const JAIL_NAME_MAX: usize = 32;
/// `maxretry` / `MaxRetry`.
pub const MAX_RETRY: RangeInclusive<u32> = 1..=1_000_000;
/// Longest duration accepted for a ban, a find time or a ban time: ten years.
pub const MAX_SECONDS: u64 = 10 * 365 * 86_400;
/// Shortest IPv4 prefix accepted for a ban or an `ipv4_prefix` (a shorter one is almost
/// surely a mistake, and would cut off a good part of the Internet).
pub const MIN_PREFIX_V4: u8 = 8;
/// Shortest IPv6 prefix accepted for a ban or an `ipv6_prefix`.
pub const MIN_PREFIX_V6: u8 = 16;

/// A value outside the shared bounds. The message reads well after `key: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LimitError(pub String);

fn err(msg: String) -> LimitError {
    LimitError(msg)
}

/// Jail names: 1–32 characters of `[A-Za-z0-9_-]`.
pub fn jail_name(name: &str) -> Result<&str, LimitError> {
    let plain = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if (1..=JAIL_NAME_MAX).contains(&name.len()) && plain {
        Ok(name)
    } else {
        Err(err(format!(
            "jail name {:?}: use 1–{JAIL_NAME_MAX} characters of [A-Za-z0-9_-]",
            name.chars().take(64).collect::<String>()
        )))
    }
}

/// `max_tracked`: addresses with open failure windows a jail keeps.
pub const MAX_TRACKED: RangeInclusive<usize> = 1..=10_000_000;

/// Addresses a jail tracks at most.
pub fn max_tracked(n: i64) -> Result<usize, LimitError> {
    usize::try_from(n)
        .ok()
        .filter(|n| MAX_TRACKED.contains(n))
        .ok_or_else(|| {
            err(format!(
                "{n} is not in {}..={}",
                MAX_TRACKED.start(),
                MAX_TRACKED.end()
            ))
        })
}

/// Failures before a ban.
pub fn max_retry(n: i64) -> Result<u32, LimitError> {
    u32::try_from(n)
        .ok()
        .filter(|n| MAX_RETRY.contains(n))
        .ok_or_else(|| {
            err(format!(
                "{n} is not in {}..={}",
                MAX_RETRY.start(),
                MAX_RETRY.end()
            ))
        })
}

/// A log file of a file jail (`logpath`): an absolute path, whose last components may be
/// globs (`*`, `?`, `[…]`), naming files rather than a directory.
pub fn log_path(p: &str) -> Result<&str, LimitError> {
    if !p.starts_with('/') {
        return Err(err(format!(
            "{p:?} is not an absolute path (logpath must start with /)"
        )));
    }
    if p.ends_with('/') || p.contains('\0') {
        return Err(err(format!("{p:?} does not name a file")));
    }
    Ok(p)
}

/// A duration that must be positive and at most [`MAX_SECONDS`] (find time, ban time).
pub fn positive_duration(d: Duration) -> Result<Duration, LimitError> {
    if d.is_zero() {
        Err(err("must be greater than 0".into()))
    } else {
        bounded_duration(d)
    }
}

/// A duration of at most [`MAX_SECONDS`] (0 allowed).
pub fn bounded_duration(d: Duration) -> Result<Duration, LimitError> {
    if d.as_secs() > MAX_SECONDS || (d.as_secs() == MAX_SECONDS && d.subsec_nanos() > 0) {
        Err(err(format!(
            "{} seconds is more than ten years ({MAX_SECONDS} seconds)",
            d.as_secs()
        )))
    } else {
        Ok(d)
    }
}

/// The prefix lengths `ipv4_prefix` / `ipv6_prefix` may take for addresses of `v6`'s family.
pub fn prefix_range(v6: bool) -> RangeInclusive<u8> {
    if v6 {
        MIN_PREFIX_V6..=128
    } else {
        MIN_PREFIX_V4..=32
    }
}

/// An aggregation prefix length (`ipv4_prefix`, `ipv6_prefix`).
pub fn prefix_len(n: i64, v6: bool) -> Result<u8, LimitError> {
    let range = prefix_range(v6);
    u8::try_from(n)
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| err(format!("{n} is not in {}..={}", range.start(), range.end())))
}

/// An IPv4-mapped IPv6 address or prefix (`::ffff:192.0.2.1`, `::ffff:192.0.2.0/120`) as
/// the IPv4 one it means; anything else unchanged. The kernel sees IPv4 traffic as IPv4.
pub fn canonical(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(n) => match n.addr().to_ipv4_mapped() {
            Some(v4) if n.prefix_len() >= 96 => {
                IpNet::new(IpAddr::V4(v4), n.prefix_len() - 96).unwrap_or(net)
            }
            _ => net,
        },
        IpNet::V4(_) => net,
    }
}

/// An address or prefix as written: `203.0.113.9`, `2001:db8::/64`, `::ffff:192.0.2.1`
/// (IPv4-mapped: the IPv4 address). Host bits set in a prefix are refused (a typo, usually).
pub fn parse_net(text: &str) -> Result<IpNet, LimitError> {
    let net = if let Ok(ip) = text.parse::<IpAddr>() {
        IpNet::from(ip)
    } else if let Ok(net) = text.parse::<IpNet>() {
        if net.trunc() != net {
            return Err(err(format!(
                "{text:?} has host bits set (did you mean {}?)",
                canonical(net.trunc())
            )));
        }
        net
    } else {
        return Err(err(format!("{text:?} is not an IP address or prefix")));
    };
    Ok(canonical(net))
}

/// What may be banned: an address or prefix ([`parse_net`]), not the unspecified address and
/// no prefix shorter than /[`MIN_PREFIX_V4`] or /[`MIN_PREFIX_V6`].
pub fn ban_target(text: &str) -> Result<IpNet, LimitError> {
    if text.len() > 64 {
        return Err(err(format!("{} characters is too long", text.len())));
    }
    let net = parse_net(text)?;
    if net.addr().is_unspecified() && net.prefix_len() == net.max_prefix_len() {
        return Err(err(format!("{text:?} is the unspecified address")));
    }
    let min = match net {
        IpNet::V4(_) => MIN_PREFIX_V4,
        IpNet::V6(_) => MIN_PREFIX_V6,
    };
    if net.prefix_len() < min {
        return Err(err(format!("{text:?}: prefix shorter than /{min}")));
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_bounds() {
        assert!(jail_name("sshd").is_ok());
        assert!(jail_name(&"a".repeat(32)).is_ok());
        for bad in ["", "a b", "a/b", "ü", &"a".repeat(33)] {
            assert!(jail_name(bad).is_err(), "{bad}");
        }
        assert_eq!(max_retry(1).unwrap(), 1);
        assert!(max_retry(0).is_err() && max_retry(1_000_001).is_err() && max_retry(-1).is_err());
        assert!(positive_duration(Duration::ZERO).is_err());
        assert!(positive_duration(Duration::from_secs(MAX_SECONDS)).is_ok());
        assert!(bounded_duration(Duration::from_secs(MAX_SECONDS + 1)).is_err());
        assert_eq!(prefix_len(64, true).unwrap(), 64);
        assert!(prefix_len(8, true).is_err(), "the IPv6 minimum is /16");
        assert!(prefix_len(8, false).is_ok());
        assert!(prefix_len(33, false).is_err());
    }

    #[test]
    fn mapped_addresses_are_ipv4() {
        assert_eq!(
            parse_net("::ffff:198.51.100.9").unwrap().to_string(),
            "198.51.100.9/32"
        );
        assert_eq!(
            parse_net("::ffff:198.51.100.0/120").unwrap().to_string(),
            "198.51.100.0/24"
        );
        assert!(parse_net("10.0.0.5/8")
            .unwrap_err()
            .0
            .contains("10.0.0.0/8"));
        for bad in [
            "0.0.0.0",
            "::",
            "0.0.0.0/0",
            "::/0",
            "2001::/8",
            "10.0.0.0/7",
        ] {
            assert!(ban_target(bad).is_err(), "{bad}");
        }
        assert!(ban_target("2001:db8::/16").is_err(), "host bits");
        assert!(ban_target("2001::/16").is_ok());
    }
}
