//! Argument checks done before anything reaches the engine, with the bounds the configuration
//! uses too ([`crate::config::limits`]).

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use super::error::{Error, Result};
use crate::config::limits;

/// Largest page a paged method returns (`limit` above this is refused).
pub const MAX_PAGE: u32 = 10_000;
pub use limits::{MAX_SECONDS, MIN_PREFIX_V4, MIN_PREFIX_V6};
/// Largest `MaxRetry`.
pub const MAX_RETRY: u32 = *limits::MAX_RETRY.end();

/// An address (`203.0.113.9`, `2001:db8::1`) or a prefix (`203.0.113.0/24`, `2001:db8::/64`).
///
/// IPv4-mapped IPv6 addresses become IPv4; host bits set in a prefix, unspecified addresses and
/// prefixes shorter than /8 (IPv4) or /16 (IPv6) are refused ([`limits::ban_target`]).
pub fn address(text: &str) -> Result<IpNet> {
    if text.is_empty() {
        return Err(Error::InvalidAddress("invalid address: empty".into()));
    }
    limits::ban_target(text).map_err(|e| Error::InvalidAddress(format!("invalid address: {e}")))
}

/// A single address (history look-ups).
pub fn single_address(text: &str) -> Result<IpAddr> {
    let net = address(text)?;
    if net.prefix_len() != net.max_prefix_len() {
        return Err(Error::InvalidAddress(format!(
            "invalid address {text:?}: a single address is expected, not a prefix"
        )));
    }
    Ok(net.addr())
}

/// Ban duration in seconds: 0 = the jail's ban time, else 1..=[`MAX_SECONDS`].
pub fn ban_seconds(seconds: u64) -> Result<Option<Duration>> {
    match seconds {
        0 => Ok(None),
        s if s <= MAX_SECONDS => Ok(Some(Duration::from_secs(s))),
        s => Err(Error::InvalidArgument(format!(
            "{s} seconds is out of range (0 = the jail's ban time, at most {MAX_SECONDS})"
        ))),
    }
}

/// The options of `BanWithOptions`: returns `force`. Unknown names and wrong types are refused
/// (naming the option), so that a caller's typo never silently drops an override.
pub fn ban_options(
    options: &std::collections::HashMap<String, zbus::OwnedVariant>,
) -> Result<bool> {
    let mut force = false;
    for (name, value) in options {
        match name.as_str() {
            "force" => {
                force = bool::try_from(value).map_err(|_| {
                    Error::InvalidArgument(format!(
                        "option force: expected a boolean (b), got type {}",
                        value.value_signature()
                    ))
                })?
            }
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unknown option {other:?} (known: force)"
                )))
            }
        }
    }
    Ok(force)
}

/// `FindTime`: 1..=[`MAX_SECONDS`].
pub fn find_time(seconds: u64) -> Result<Duration> {
    limits::positive_duration(Duration::from_secs(seconds)).map_err(|_| {
        Error::InvalidArgument(format!(
            "FindTime {seconds} is out of range 1..={MAX_SECONDS} seconds"
        ))
    })
}

/// `BanTime`: -1 (permanent) or 1..=[`MAX_SECONDS`].
pub fn ban_time(seconds: i64) -> Result<Option<Duration>> {
    match seconds {
        -1 => Ok(None),
        s if s >= 1 && s as u64 <= MAX_SECONDS => Ok(Some(Duration::from_secs(s as u64))),
        s => Err(Error::InvalidArgument(format!(
            "BanTime {s} is out of range (-1 = permanent, or 1..={MAX_SECONDS} seconds)"
        ))),
    }
}

/// `MaxRetry`: 1..=[`MAX_RETRY`].
pub fn max_retry(n: u32) -> Result<u32> {
    limits::max_retry(i64::from(n)).map_err(|_| {
        Error::InvalidArgument(format!("MaxRetry {n} is out of range 1..={MAX_RETRY}"))
    })
}

/// A page: `limit` ≤ [`MAX_PAGE`] (0 returns only the total).
pub fn page(offset: u32, limit: u32) -> Result<(usize, usize)> {
    if limit > MAX_PAGE {
        return Err(Error::InvalidArgument(format!(
            "limit {limit} is larger than {MAX_PAGE}: page through the list"
        )));
    }
    Ok((offset as usize, limit as usize))
}

/// A jail name as given by a caller: must look like a jail name or it cannot exist.
pub fn jail(name: &str) -> Result<String> {
    if let Ok(name) = limits::jail_name(name) {
        Ok(name.to_string())
    } else {
        Err(Error::NoSuchJail(format!(
            "no such jail: {:?}",
            name.chars().take(64).collect::<String>()
        )))
    }
}

/// An optional jail: empty = every jail.
pub fn opt_jail(name: &str) -> Result<Option<String>> {
    if name.is_empty() {
        Ok(None)
    } else {
        jail(name).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            address("203.0.113.9").unwrap().to_string(),
            "203.0.113.9/32"
        );
        assert_eq!(
            address("2001:db8::1").unwrap().to_string(),
            "2001:db8::1/128"
        );
        assert_eq!(
            address("203.0.113.0/24").unwrap().to_string(),
            "203.0.113.0/24"
        );
        assert_eq!(
            address("2001:db8::/64").unwrap().to_string(),
            "2001:db8::/64"
        );
        assert_eq!(
            address("::ffff:203.0.113.9").unwrap().to_string(),
            "203.0.113.9/32"
        );
        assert_eq!(
            address("::ffff:203.0.113.0/120").unwrap().to_string(),
            "203.0.113.0/24"
        );
        for bad in [
            "",
            "x",
            "1.2.3",
            "0.0.0.0",
            "::",
            "0.0.0.0/0",
            "10.0.0.0/7",
            "::/0",
            "2001::/8",
            "203.0.113.9/24",
            "1.2.3.4/33",
            " 1.2.3.4",
        ] {
            assert!(
                matches!(address(bad), Err(Error::InvalidAddress(_))),
                "{bad}"
            );
        }
        assert!(single_address("203.0.113.0/24").is_err());
        assert!(single_address("203.0.113.7").is_ok());
    }

    #[test]
    fn bounds() {
        assert_eq!(ban_seconds(0).unwrap(), None);
        let opts = |k: &str, v: zbus::Variant<'_>| {
            std::collections::HashMap::from([(k.to_string(), v.try_to_owned().unwrap())])
        };
        assert!(ban_options(&opts("force", true.into())).unwrap());
        assert!(!ban_options(&Default::default()).unwrap());
        assert!(ban_options(&opts("force", 1u32.into())).is_err());
        assert!(ban_options(&opts("forse", true.into())).is_err());
        assert!(ban_seconds(MAX_SECONDS + 1).is_err());
        assert!(find_time(0).is_err());
        assert_eq!(ban_time(-1).unwrap(), None);
        assert!(ban_time(0).is_err());
        assert!(ban_time(-2).is_err());
        assert!(max_retry(0).is_err());
        assert!(page(0, MAX_PAGE).is_ok());
        assert!(page(0, MAX_PAGE + 1).is_err());
        assert!(opt_jail("").unwrap().is_none());
        assert!(matches!(jail("a/b"), Err(Error::NoSuchJail(_))));
    }
}
