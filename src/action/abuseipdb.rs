//! The abuseipdb action: a report per banned address to AbuseIPDB's v2 API (`ip`,
//! `categories`, `comment`, `timestamp`; the key in the `Key` header), with categories per
//! jail (by default by the jail's filter family), a comment made of the matched lines with
//! this host's own addresses and name scrubbed, and the API's limits respected (429 →
//! retried after `Retry-After`). Prefixes and addresses that are not public are not reported.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT};

use super::{http, ActionError};
use crate::config::{ActionConfig, ActionKind, Settings};
use crate::outbox::{Delivery, Notice, Sink};

/// AbuseIPDB takes comments of at most this many characters.
const MAX_COMMENT: usize = 1024;

pub struct AbuseIpdb {
    name: String,
    client: reqwest::Client,
    url: reqwest::Url,
    headers: HeaderMap,
    /// Categories of each jail of the configuration.
    categories: BTreeMap<String, Vec<u8>>,
    own: Vec<IpNet>,
}

/// Categories by the filter's family (AbuseIPDB's numbers: 5 FTP brute-force, 8 VoIP fraud,
/// 11 e-mail spam, 15 hacking, 18 brute-force, 21 web app attack, 22 SSH).
pub fn family_categories(filter: &str) -> Vec<u8> {
    let has = |words: &[&str]| words.iter().any(|w| filter.contains(w));
    if has(&["ssh", "dropbear"]) {
        vec![18, 22]
    } else if has(&["ftp"]) {
        vec![5, 18]
    } else if has(&[
        "postfix", "dovecot", "exim", "sendmail", "courier", "smtp", "imap", "pop3", "mail",
    ]) {
        vec![11, 18]
    } else if has(&["asterisk", "freeswitch", "sip", "voip"]) {
        vec![8, 18]
    } else if has(&["recidive"]) {
        vec![15, 18]
    } else if has(&[
        "http",
        "nginx",
        "apache",
        "web",
        "wordpress",
        "php",
        "haproxy",
        "bot",
    ]) {
        vec![18, 21]
    } else {
        vec![18]
    }
}

impl AbuseIpdb {
    pub fn new(cfg: &ActionConfig, settings: &Settings) -> Result<AbuseIpdb, ActionError> {
        let ActionKind::AbuseIpdb {
            key,
            categories,
            url,
        } = &cfg.kind
        else {
            return Err(ActionError::Kind(cfg.name.clone()));
        };
        let bad = |what: String| ActionError::Invalid(cfg.name.clone(), what);
        let mut headers = HeaderMap::new();
        let mut k = HeaderValue::from_str(key.expose())
            .map_err(|_| bad(format!("{}: not a usable key", key.path.display())))?;
        k.set_sensitive(true);
        headers.insert("Key", k);
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let mut cats = categories.clone();
        for j in &settings.jails {
            cats.entry(j.name.clone())
                .or_insert_with(|| family_categories(j.filter_name().unwrap_or(&j.name)));
        }
        Ok(AbuseIpdb {
            name: cfg.name.clone(),
            client: http::client(cfg.timeout)?,
            url: url.parse().map_err(|_| bad("url".into()))?,
            headers,
            categories: cats,
            own: crate::system::local_addresses(),
        })
    }

    /// Whether AbuseIPDB would take a report of this address: a single, public one.
    fn reportable(n: &Notice) -> Option<IpAddr> {
        let ip: IpAddr = n.address.parse().ok()?;
        (!n.prefix && is_public(ip)).then_some(ip)
    }
}

/// Not private, shared, link-local, loopback, documentation, benchmarking, multicast or
/// reserved (AbuseIPDB refuses reports of those).
pub fn is_public(ip: IpAddr) -> bool {
    const NOT_PUBLIC: &[&str] = &[
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/3",
        "::/127",
        "::ffff:0:0/96",
        "64:ff9b::/96",
        "100::/64",
        "2001:db8::/32",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    ];
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    !NOT_PUBLIC
        .iter()
        .any(|n| n.parse::<IpNet>().is_ok_and(|n| n.contains(&ip)))
}

/// The comment: the matched lines with the host's own addresses and name replaced, cut to
/// AbuseIPDB's limit.
pub fn comment(n: &Notice, own: &[IpNet]) -> String {
    let mut text = format!("f2b jail {}: {} failure(s)", n.jail, n.failures);
    for l in &n.lines {
        text.push('\n');
        text.push_str(&scrub(l, &n.host, own));
    }
    if text.chars().count() > MAX_COMMENT {
        text = text.chars().take(MAX_COMMENT - 1).collect::<String>() + "…";
    }
    text
}

/// `line` without `host` (as a word) and without any address of `own`.
fn scrub(line: &str, host: &str, own: &[IpNet]) -> String {
    let is_addr_char = |c: char| c.is_ascii_hexdigit() || c == '.' || c == ':';
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while !rest.is_empty() {
        let start = rest.find(is_addr_char).unwrap_or(rest.len());
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(|c| !is_addr_char(c)).unwrap_or(rest.len());
        let token = &rest[..end];
        let bare = token.trim_end_matches([':', '.']);
        // An address as it is, or an IPv4 address with its port ("192.0.2.1:22").
        let addr = match bare.parse::<IpAddr>() {
            Ok(ip) => Some((ip, bare.len())),
            Err(_) => (bare.split_once(':'))
                .and_then(|(a, _)| Some((IpAddr::V4(a.parse().ok()?), a.len()))),
        };
        match addr {
            Some((ip, len)) if own.iter().any(|n| n.contains(&ip)) => {
                out.push_str("[this host]");
                out.push_str(&token[len..]);
            }
            _ => out.push_str(token),
        }
        rest = &rest[end..];
    }
    if host.is_empty() || host == "localhost" {
        return out;
    }
    let short = host.split('.').next().unwrap_or(host);
    out.replace(host, "[this host]")
        .replace(short, "[this host]")
}

impl Sink for AbuseIpdb {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a self, n: &'a Notice) -> Delivery<'a> {
        Box::pin(async move {
            let Some(ip) = AbuseIpdb::reportable(n) else {
                tracing::debug!(F2B_ACTION = %self.name, F2B_ADDRESS = %n.address,
                    "action {}: {} is not a single public address: not reported", self.name, n.address);
                return Ok(());
            };
            let cats = (self.categories.get(&n.jail))
                .cloned()
                .unwrap_or_else(|| family_categories(&n.jail));
            let cats: Vec<String> = cats.iter().map(u8::to_string).collect();
            let form = [
                ("ip", ip.to_string()),
                ("categories", cats.join(",")),
                ("comment", comment(n, &self.own)),
                ("timestamp", crate::clock::rfc3339(n.time_us)),
            ];
            let req = (self.client.post(self.url.clone()))
                .headers(self.headers.clone())
                .form(&form);
            http::exchange(req).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::NoticeEvent;

    #[test]
    fn the_comment_names_neither_this_host_nor_its_addresses() {
        let n = Notice {
            event: NoticeEvent::Ban,
            jail: "sshd".into(),
            address: "203.0.113.9".into(),
            prefix: false,
            failures: 3,
            bantime: 600,
            bancount: 1,
            end_us: 0,
            host: "gate.example.org".into(),
            time_us: 0,
            origin: "local".into(),
            lines: vec![
                "gate sshd[1]: Failed password for root from 203.0.113.9 port 22 ssh2 on 198.51.100.1:22".into(),
                "Connection to 2001:db8::1. closed by gate.example.org".into(),
            ],
        };
        let own: Vec<IpNet> = vec![
            "198.51.100.1/32".parse().unwrap(),
            "2001:db8::1/128".parse().unwrap(),
        ];
        let c = comment(&n, &own);
        assert_eq!(
            c,
            "f2b jail sshd: 3 failure(s)\n[this host] sshd[1]: Failed password for root from \
             203.0.113.9 port 22 ssh2 on [this host]:22\nConnection to [this host]. closed by [this host]"
        );
    }

    #[test]
    fn only_public_addresses_are_reported() {
        for (a, public) in [
            ("100.24.1.7", true),
            ("2a01:4f8::1", true),
            ("10.1.2.3", false),
            ("203.0.113.9", false),
            ("::ffff:192.168.1.1", false),
            ("fd00::1", false),
        ] {
            assert_eq!(is_public(a.parse().unwrap()), public, "{a}");
        }
    }

    #[test]
    fn families_have_categories() {
        assert_eq!(family_categories("sshd"), [18, 22]);
        assert_eq!(family_categories("nginx-http-auth"), [18, 21]);
        assert_eq!(family_categories("postfix"), [11, 18]);
        assert_eq!(family_categories("unknown"), [18]);
    }
}
