//! [`Notice`]: what every sink is told about a ban or an unban — the same fields for all.

use serde::{Deserialize, Serialize};

/// At most this many matched lines travel with a notice, each cut to 512 bytes.
pub const MAX_LINES: usize = 10;
const MAX_LINE_BYTES: usize = 512;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoticeEvent {
    Ban,
    Unban,
    /// A jail started (actions may ask for it).
    Start,
    /// A jail stopped.
    Stop,
}

impl NoticeEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeEvent::Ban => "ban",
            NoticeEvent::Unban => "unban",
            NoticeEvent::Start => "start",
            NoticeEvent::Stop => "stop",
        }
    }
}

/// One message for the sinks. Serialized as the outbox row's payload (JSON), and the fields
/// templates and commands use (`{jail}`, `{address}` …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub event: NoticeEvent,
    pub jail: String,
    /// The banned address, or prefix (`2001:db8::/64`).
    pub address: String,
    /// Whether `address` is a prefix.
    pub prefix: bool,
    /// Failures that led to the ban (0 for a ban by hand and for unbans).
    pub failures: u32,
    /// Ban duration in seconds; -1 = permanent; 0 for unbans.
    pub bantime: i64,
    /// The n-th ban of this address.
    pub bancount: u32,
    /// When the ban ends, µs since the epoch; 0 = permanent or unban.
    pub end_us: u64,
    /// This host's name.
    pub host: String,
    /// When it happened, µs since the epoch.
    pub time_us: u64,
    /// Who decided it: `local`, `manual:UID`, `peer:HOST`, `import`.
    pub origin: String,
    /// The latest matched lines (at most [`MAX_LINES`]).
    pub lines: Vec<String>,
}

impl Notice {
    /// Bound the lines (count and length) so that a notice stays small.
    pub fn bounded_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let lines: Vec<&str> = lines.into_iter().collect();
        let skip = lines.len().saturating_sub(MAX_LINES);
        lines
            .into_iter()
            .skip(skip)
            .map(|l| {
                if l.len() <= MAX_LINE_BYTES {
                    l.to_string()
                } else {
                    let mut end = MAX_LINE_BYTES;
                    while !l.is_char_boundary(end) {
                        end -= 1;
                    }
                    format!("{}…", &l[..end])
                }
            })
            .collect()
    }

    /// The value of a field by name, as text (for templates and command arguments);
    /// `None` for an unknown field.
    pub fn field(&self, name: &str) -> Option<String> {
        Some(match name {
            "event" => self.event.as_str().to_string(),
            "jail" => self.jail.clone(),
            "address" | "ip" => self.address.clone(),
            "prefix" => self.prefix.to_string(),
            "failures" => self.failures.to_string(),
            "bantime" => self.bantime.to_string(),
            "bancount" => self.bancount.to_string(),
            "end_us" => self.end_us.to_string(),
            "host" | "hostname" => self.host.clone(),
            "time_us" => self.time_us.to_string(),
            "time" => crate::clock::rfc3339(self.time_us),
            "origin" => self.origin.clone(),
            "lines" => self.lines.join("\n"),
            _ => return None,
        })
    }

    /// Every field name [`Notice::field`] knows.
    pub const FIELDS: &'static [&'static str] = &[
        "event", "jail", "address", "ip", "prefix", "failures", "bantime", "bancount", "end_us",
        "host", "hostname", "time_us", "time", "origin", "lines",
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded() {
        let long = "x".repeat(2000);
        let many: Vec<String> = (0..30).map(|i| format!("line {i}")).collect();
        let b = Notice::bounded_lines(many.iter().map(String::as_str));
        assert_eq!(b.len(), MAX_LINES);
        assert_eq!(b[0], "line 20");
        let b = Notice::bounded_lines([long.as_str()]);
        assert!(b[0].len() <= MAX_LINE_BYTES + 3);
    }

    #[test]
    fn every_field_has_a_value() {
        let n = Notice {
            event: NoticeEvent::Ban,
            jail: "sshd".into(),
            address: "192.0.2.1".into(),
            prefix: false,
            failures: 5,
            bantime: 600,
            bancount: 1,
            end_us: 1,
            host: "h".into(),
            time_us: 1_700_000_000_000_000,
            origin: "local".into(),
            lines: vec![],
        };
        for f in Notice::FIELDS {
            assert!(n.field(f).is_some(), "{f}");
        }
        assert_eq!(n.field("nope"), None);
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(serde_json::from_str::<Notice>(&json).unwrap(), n);
    }
}
