//! The `<HOST>` pattern: a strict IPv4 / IPv6 address, optionally bracketed or IPv4-mapped.
//!
//! The regex only finds a candidate; [`parse_host`] validates it with the standard library
//! parser, so a look-alike such as `999.1.1.1` or `1:2:3` never becomes an address.

use std::net::IpAddr;

/// One IPv4 octet, 0–255, no leading zeros beyond a single digit.
const OCTET: &str = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])";

/// Build the IPv4 pattern (no groups).
pub fn ipv4_pattern() -> String {
    format!(r"{o}(?:\.{o}){{3}}", o = OCTET)
}

/// Candidate IPv6 text: hex groups and colons (at least two colons), an optional dotted IPv4
/// tail (`::ffff:1.2.3.4`) and an optional zone (`fe80::1%eth0`). Validated by [`parse_host`].
pub fn ipv6_pattern() -> String {
    format!(
        r"(?:[0-9A-Fa-f]{{0,4}}:){{2,7}}(?:{v4}|[0-9A-Fa-f]{{0,4}})(?:%[0-9A-Za-z_.-]+)?",
        v4 = ipv4_pattern()
    )
}

/// The expansion of `<HOST>`: named group `host` around v4 | v6 | [v6].
///
/// The alternatives never consume a neighbouring digit, dot, colon or hex letter, so an
/// anchored pattern decides exactly where the address is.
pub fn host_group() -> String {
    format!(
        r"(?P<host>{v4}|{v6}|\[{v6}\])",
        v4 = ipv4_pattern(),
        v6 = ipv6_pattern()
    )
}

/// Turn a captured `host` text into an address: strips brackets and zones, unmaps
/// `::ffff:a.b.c.d` to IPv4. `None` when the text is not an address.
pub fn parse_host(text: &str) -> Option<IpAddr> {
    let t = text.trim_start_matches('[').trim_end_matches(']');
    let t = match t.find('%') {
        Some(i) => &t[..i],
        None => t,
    };
    let ip: IpAddr = t.parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    fn find(s: &str) -> Option<IpAddr> {
        let re = Regex::new(&format!("^from {} port$", host_group())).unwrap();
        re.captures(s).and_then(|c| parse_host(&c["host"]))
    }

    #[test]
    fn accepts_v4_v6_bracketed_mapped() {
        assert_eq!(
            find("from 203.0.113.9 port"),
            Some("203.0.113.9".parse().unwrap())
        );
        assert_eq!(
            find("from 2001:db8::1 port"),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(
            find("from [2001:db8::1] port"),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(
            find("from ::ffff:198.51.100.7 port"),
            Some("198.51.100.7".parse().unwrap())
        );
        assert_eq!(find("from ::1 port"), Some("::1".parse().unwrap()));
        assert_eq!(
            find("from fe80::1%eth0 port"),
            Some("fe80::1".parse().unwrap())
        );
        assert_eq!(
            find("from 2001:db8:1:2:3:4:5:6 port"),
            Some("2001:db8:1:2:3:4:5:6".parse().unwrap())
        );
    }

    #[test]
    fn rejects_lookalikes() {
        assert_eq!(find("from 256.1.1.1 port"), None);
        assert_eq!(find("from 1.2.3 port"), None);
        assert_eq!(find("from 1.2.3.4.5 port"), None);
        assert_eq!(find("from 1:2 port"), None);
        assert_eq!(find("from 1:2:3 port"), None); // matches the shape, fails validation
        assert_eq!(find("from 1::2::3 port"), None);
        assert_eq!(find("from example.com port"), None);
    }
}
