//! A feed's body → addresses and CIDRs, with the bad lines counted and the first few named by
//! line number; and the guard that refuses a body that is no blocklist.

use std::net::IpAddr;

use ipnet::IpNet;

use super::ranges::AddrRanges;
use super::FeedError;
use crate::config::FeedFormat;

/// Bad lines named (the others are only counted).
pub const BAD_SHOWN: usize = 5;

/// What a body holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Every good entry, merged.
    pub ranges: AddrRanges,
    /// Good entries (lines) per family.
    pub entries: (usize, usize),
    /// Lines that are neither entries nor comments.
    pub bad: usize,
    /// The first [`BAD_SHOWN`] of them: "line 7: \"<html>\": not an address or CIDR".
    pub bad_lines: Vec<String>,
}

/// Reads `body` in `format`.
pub fn parse(format: FeedFormat, body: &[u8]) -> Parsed {
    let text = String::from_utf8_lossy(body);
    let mut nets = Vec::new();
    let mut p = Parsed::default();
    for (i, raw) in text.lines().enumerate() {
        match entry(format, raw) {
            Ok(None) => {}
            Ok(Some(net)) => {
                if net.addr().is_ipv4() {
                    p.entries.0 += 1;
                } else {
                    p.entries.1 += 1;
                }
                nets.push(net);
            }
            Err(why) => {
                p.bad += 1;
                if p.bad_lines.len() < BAD_SHOWN {
                    let shown: String = raw.trim().chars().take(60).collect();
                    p.bad_lines
                        .push(format!("line {}: {shown:?}: {why}", i + 1));
                }
            }
        }
    }
    p.ranges = AddrRanges::from_nets(&nets);
    p
}

/// Refuses a body that would wipe or swamp the list: nothing usable in it, mostly garbage
/// (an error page served with 200 OK), or more entries than `max_entries`.
pub fn check(p: &Parsed, body_len: usize, max_entries: usize) -> Result<(), FeedError> {
    let good = p.entries.0 + p.entries.1;
    if body_len == 0 {
        return Err(FeedError::Empty);
    }
    if p.bad > 0 && p.bad >= good {
        return Err(FeedError::Garbage {
            good,
            bad: p.bad,
            first: p.bad_lines.first().cloned().unwrap_or_default(),
        });
    }
    if good > max_entries {
        return Err(FeedError::TooManyEntries {
            entries: good,
            max: max_entries,
        });
    }
    Ok(())
}

/// One line: `Ok(None)` for comments and blank lines.
fn entry(format: FeedFormat, line: &str) -> Result<Option<IpNet>, String> {
    let line = line.trim_start_matches('\u{feff}').trim();
    if line.is_empty() {
        return Ok(None);
    }
    if format == FeedFormat::SpamhausDrop && line.starts_with('{') {
        return json_entry(line);
    }
    let comments: &[char] = match format {
        FeedFormat::Firehol => &['#'],
        FeedFormat::Plain | FeedFormat::SpamhausDrop => &['#', ';'],
    };
    let data = line.split(comments).next().unwrap_or_default().trim();
    if data.is_empty() {
        return Ok(None);
    }
    let mut words = data.split_whitespace();
    let first = words.next().unwrap_or_default();
    if format == FeedFormat::Firehol && words.next().is_some() {
        return Err("more than one word (a netset has one address or CIDR per line)".into());
    }
    net(first).map(Some)
}

/// `{"cidr":"192.0.2.0/24","sblid":"SBL1","rir":"…"}`; the last line of Spamhaus's JSON files
/// is `{"type":"metadata",…}`.
fn json_entry(line: &str) -> Result<Option<IpNet>, String> {
    let v: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not a JSON object: {e}"))?;
    if v.get("type").and_then(|t| t.as_str()) == Some("metadata") {
        return Ok(None);
    }
    match v.get("cidr").and_then(|c| c.as_str()) {
        Some(c) => net(c).map(Some),
        None => Err("a JSON line without \"cidr\"".into()),
    }
}

/// An address or CIDR (host bits are cleared); /0 is refused.
fn net(text: &str) -> Result<IpNet, String> {
    let net = match text.parse::<IpAddr>() {
        Ok(ip) => IpNet::from(ip),
        Err(_) => text
            .parse::<IpNet>()
            .map_err(|_| "not an address or CIDR".to_string())?,
    };
    let net = crate::config::limits::canonical(net).trunc();
    if net.prefix_len() == 0 {
        return Err("a /0 prefix would drop every address".into());
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lists_with_comments_and_trailing_words() {
        let body = "# blocklist\n192.0.2.1\n\n198.51.100.0/24 ; scanner\n2001:db8::/32 # v6\n\
                    203.0.113.7 some words\n::ffff:192.0.2.2\n10.0.0.5/8\n";
        let p = parse(FeedFormat::Plain, body.as_bytes());
        assert_eq!(p.entries, (5, 1));
        assert_eq!(p.bad, 0);
        assert!(p.ranges.contains("192.0.2.2".parse().unwrap()));
        assert!(
            p.ranges.contains("10.200.0.1".parse().unwrap()),
            "host bits cleared"
        );
        assert!(check(&p, body.len(), 100).is_ok());
        assert!(matches!(
            check(&p, body.len(), 5),
            Err(FeedError::TooManyEntries { entries: 6, max: 5 })
        ));
    }

    #[test]
    fn spamhaus_drop_text_and_json_lines() {
        let text = "; Spamhaus DROP List 2026/01/01\n; Expires: …\n1.10.16.0/20 ; SBL256894\n\
                    2.56.192.0/22 ; SBL459831\n";
        let p = parse(FeedFormat::SpamhausDrop, text.as_bytes());
        assert_eq!((p.entries, p.bad), ((2, 0), 0));
        let json = "{\"cidr\":\"1.10.16.0/20\",\"sblid\":\"SBL256894\",\"rir\":\"apnic\"}\n\
                    {\"cidr\":\"2a06:5280::/29\",\"sblid\":\"SBL1\",\"rir\":\"ripencc\"}\n\
                    {\"type\":\"metadata\",\"timestamp\":1700000000,\"size\":2,\"records\":2}\n\
                    {\"sblid\":\"SBL2\"}\n";
        let p = parse(FeedFormat::SpamhausDrop, json.as_bytes());
        assert_eq!(p.entries, (1, 1));
        assert_eq!(p.bad, 1);
        assert!(p.bad_lines[0].starts_with("line 4: "), "{:?}", p.bad_lines);
    }

    #[test]
    fn firehol_netsets_have_one_word_per_line() {
        let body = "#\n# firehol_level1\n#\n0.0.0.0/8\n1.19.0.0/16\n1.2.3.4 extra\n";
        let p = parse(FeedFormat::Firehol, body.as_bytes());
        assert_eq!(p.entries, (2, 0));
        assert_eq!(p.bad, 1);
        assert!(p.bad_lines[0].contains("line 6"), "{:?}", p.bad_lines);
    }

    #[test]
    fn garbage_zero_prefixes_and_empty_bodies_are_refused() {
        let html = "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n</body>\n\
                    </html>\n192.0.2.1\n";
        let p = parse(FeedFormat::Plain, html.as_bytes());
        assert_eq!(p.bad, 5);
        assert_eq!(p.bad_lines.len(), BAD_SHOWN);
        assert!(
            p.bad_lines[0].starts_with("line 1: \"<html>\""),
            "{:?}",
            p.bad_lines
        );
        let e = check(&p, html.len(), 100).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        let p = parse(
            FeedFormat::Plain,
            b"0.0.0.0/0\n::/0\n192.0.2.1\n192.0.2.2\n192.0.2.3\n",
        );
        assert_eq!((p.entries, p.bad), ((3, 0), 2));
        assert!(p.bad_lines[1].contains("/0"), "{:?}", p.bad_lines);
        assert!(
            check(&p, 10, 100).is_ok(),
            "a few bad lines do not refuse the rest"
        );
        assert!(matches!(
            check(&Parsed::default(), 0, 10),
            Err(FeedError::Empty)
        ));
        assert!(check(
            &parse(FeedFormat::Plain, b"# nothing listed today\n"),
            24,
            10
        )
        .is_ok());
    }
}
