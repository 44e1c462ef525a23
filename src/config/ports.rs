//! `ports`: numbers, ranges (`"8000-8100"`) and service names (`"ssh"`), resolved with a
//! [`Services`] table that the caller gives (the system's is read by [`crate::system`]).

use std::collections::HashMap;

use crate::firewall::{PortRange, Protocol, Verdict};

/// A port as written: a number, `"8000-8100"`, or a service name (`"ssh"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawPort {
    Int(i64),
    Str(String),
}

/// Service names → TCP ports. [`Services::default`] knows a few well-known names;
/// [`Services::parse`] adds those of a `services(5)` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Services {
    ports: HashMap<String, u16>,
}

/// Names every host knows, whatever its /etc/services says.
const WELL_KNOWN: &[(&str, u16)] = &[
    ("ssh", 22),
    ("smtp", 25),
    ("http", 80),
    ("pop3", 110),
    ("imap", 143),
    ("imap2", 143),
    ("https", 443),
    ("submission", 587),
    ("imaps", 993),
    ("pop3s", 995),
];

impl Default for Services {
    fn default() -> Self {
        Services {
            ports: WELL_KNOWN
                .iter()
                .map(|(n, p)| (n.to_string(), *p))
                .collect(),
        }
    }
}

impl Services {
    /// The well-known names, overridden by the TCP entries (names and aliases) of `text` in
    /// the format of services(5): `name port/protocol [aliases…] [# comment]`. Lines it cannot
    /// read are skipped, as the C library does.
    pub fn parse(text: &str) -> Services {
        let mut file: HashMap<String, u16> = HashMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut parts = line.split_whitespace();
            let (Some(name), Some(pp)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Some(("tcp", port)) = pp.split_once('/').map(|(p, proto)| (proto, p)) else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            // The first entry of a name counts, as with getservbyname(3).
            for n in std::iter::once(name).chain(parts) {
                file.entry(n.to_string()).or_insert(port);
            }
        }
        let mut s = Services::default();
        s.ports.extend(file);
        s
    }

    /// The TCP port of a service name.
    pub fn port(&self, name: &str) -> Option<u16> {
        self.ports.get(name).copied()
    }
}

/// One entry of `ports`.
pub fn parse_port(p: &RawPort, services: &Services) -> Result<PortRange, String> {
    let one = |s: &str| -> Result<u16, String> {
        let s = s.trim();
        match s.parse::<u16>() {
            Ok(0) => Err("port 0 is not a port".into()),
            Ok(n) => Ok(n),
            Err(_) => services
                .port(s)
                .ok_or_else(|| format!("{s:?} is not a port number or a known service name")),
        }
    };
    match p {
        RawPort::Int(n) => u16::try_from(*n)
            .ok()
            .filter(|n| *n > 0)
            .map(|n| PortRange { first: n, last: n })
            .ok_or_else(|| format!("{n} is not a port (1–65535)")),
        RawPort::Str(s) => match s.split_once('-') {
            Some((a, b)) => {
                let (first, last) = (one(a)?, one(b)?);
                if first > last {
                    return Err(format!("range {s:?} is reversed"));
                }
                Ok(PortRange { first, last })
            }
            None => one(s).map(|n| PortRange { first: n, last: n }),
        },
    }
}

/// `protocol` as written: `tcp`, `udp`, `tcp+udp` or `all` (not with ports); the default is
/// `all` without ports, `tcp` with them.
pub fn parse_protocol(text: Option<&str>, with_ports: bool) -> Result<Protocol, String> {
    match text {
        Some("tcp") => Ok(Protocol::Tcp),
        Some("udp") => Ok(Protocol::Udp),
        Some("tcp+udp" | "tcpudp" | "both") => Ok(Protocol::TcpUdp),
        Some("all") if with_ports => Err("\"all\" cannot be combined with ports".into()),
        Some("all") => Ok(Protocol::All),
        Some(o) => Err(format!("{o:?} is not tcp, udp, tcp+udp or all")),
        None if with_ports => Ok(Protocol::Tcp),
        None => Ok(Protocol::All),
    }
}

/// `action` as written: `drop` (the default) or `reject`.
pub fn parse_verdict(text: Option<&str>) -> Result<Verdict, String> {
    match text {
        None | Some("drop") => Ok(Verdict::Drop),
        Some("reject") => Ok(Verdict::Reject),
        Some(o) => Err(format!("{o:?} is not drop or reject")),
    }
}

/// A port range as written in `ports` (`22`, `8000-8100`).
pub fn port_text(r: &PortRange) -> String {
    if r.first == r.last {
        r.first.to_string()
    } else {
        format!("{}-{}", r.first, r.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_file_and_fallbacks() {
        let s = Services::parse(
            "# comment\nssh 2222/tcp\nssh 22/tcp\ngopher 70/tcp gopherd # old\ndomain 53/udp\nbad x/tcp\n",
        );
        assert_eq!(s.port("gopher"), Some(70));
        assert_eq!(s.port("gopherd"), Some(70));
        assert_eq!(s.port("domain"), None, "udp only");
        assert_eq!(s.port("ssh"), Some(2222), "the file wins, its first entry");
        assert_eq!(Services::default().port("https"), Some(443));
        let r = |t: &str| parse_port(&RawPort::Str(t.into()), &s);
        assert_eq!(
            r("gopher-80").unwrap(),
            PortRange {
                first: 70,
                last: 80
            }
        );
        assert!(r("80-70").unwrap_err().contains("reversed"));
        assert!(r("nosuch").unwrap_err().contains("service name"));
        assert!(parse_port(&RawPort::Int(0), &s).is_err());
        assert!(parse_port(&RawPort::Int(70_000), &s).is_err());
        assert_eq!(port_text(&PortRange { first: 1, last: 2 }), "1-2");
    }
}
