//! Syslog text lines: the formats admins have in /var/log/auth.log, mail.log, secure, messages.
//!
//! Recognised per line (a file may mix them):
//! - RFC 3164 / BSD: `Dec  1 10:00:00 host ident[pid]: msg` (no year, local time; journalctl's
//!   `short` output zero-pads the day: `Dec 01`);
//! - rsyslog's ISO form (Debian 12+ default) and journalctl `short-iso`:
//!   `2026-12-01T10:00:00.123456+00:00 host ident[pid]: msg`;
//! - RFC 5424: `<PRI>1 2026-12-01T10:00:00Z host app procid msgid [sd] msg`.
//!
//! An optional `<PRI>` before RFC 3164/ISO lines is skipped. The ident selects which lines a
//! filter sees (the lines of other programs are not given to it), the pid feeds session
//! correlation and the timestamp is the entry time. A line in none of these forms is a plain
//! MESSAGE. Text carries no trusted fields: a file source trusts whoever can write to it.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// One parsed syslog line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogLine<'a> {
    /// µs since the epoch.
    pub time_us: Option<u64>,
    pub host: Option<&'a str>,
    pub ident: Option<&'a str>,
    pub pid: Option<u32>,
    pub message: &'a str,
}

/// Parses lines of one file; infers the year of RFC 3164 timestamps.
#[derive(Debug, Clone)]
pub struct SyslogParser {
    tz: TimeZone,
    /// "Now", for the year of year-less timestamps: a date more than a day ahead of it is last
    /// year's.
    now: Timestamp,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl Default for SyslogParser {
    fn default() -> Self {
        SyslogParser::new(TimeZone::system(), Timestamp::now())
    }
}

impl SyslogParser {
    /// A parser for local times in `tz`, with `now` for year inference.
    pub fn new(tz: TimeZone, now: Timestamp) -> Self {
        SyslogParser { tz, now }
    }

    /// Parse one line (without its newline). Lines in no known form come back as a plain
    /// message (`time_us`, `ident` … `None`).
    pub fn parse<'a>(&self, line: &'a str) -> SyslogLine<'a> {
        let plain = SyslogLine {
            time_us: None,
            host: None,
            ident: None,
            pid: None,
            message: line,
        };
        let (pri, rest) = strip_pri(line);
        if pri {
            if let Some(r) = rest.strip_prefix("1 ") {
                if let Some(p) = self.rfc5424(r) {
                    return p;
                }
            }
        }
        let parsed = if rest.as_bytes().first().is_some_and(u8::is_ascii_digit) {
            self.iso(rest)
        } else {
            self.bsd(rest)
        };
        parsed.unwrap_or(plain)
    }

    /// `Mon DD HH:MM:SS host ident[pid]: msg`
    fn bsd<'a>(&self, s: &'a str) -> Option<SyslogLine<'a>> {
        let mon = MONTHS.iter().position(|m| s.starts_with(m))? as i8 + 1;
        let s = s.get(3..)?.strip_prefix(' ')?;
        let s = s.strip_prefix(' ').unwrap_or(s);
        let (day, s) = s.split_once(' ')?;
        let day: i8 = day.parse().ok()?;
        let (clock, s) = s.split_once(' ')?;
        let time = parse_clock(clock)?;
        let year = self.infer_year(mon, day)?;
        let dt = DateTime::from_parts(Date::new(year, mon, day).ok()?, time);
        let ts = self.tz.to_timestamp(dt).ok()?;
        header_rest(s, Some(ts))
    }

    /// `2026-12-01T10:00:00[.frac](Z|+HH:MM|+HHMM) host ident[pid]: msg`
    fn iso<'a>(&self, s: &'a str) -> Option<SyslogLine<'a>> {
        let (stamp, rest) = s.split_once(' ')?;
        let ts = parse_iso(stamp, &self.tz)?;
        header_rest(rest, Some(ts))
    }

    /// `TIMESTAMP HOST APP PROCID MSGID SD MSG` after `<PRI>1 `.
    fn rfc5424<'a>(&self, s: &'a str) -> Option<SyslogLine<'a>> {
        let mut it = s.splitn(6, ' ');
        let stamp = it.next()?;
        let host = nil(it.next()?);
        let app = nil(it.next()?);
        let procid = nil(it.next()?);
        let _msgid = it.next()?;
        let rest = it.next().unwrap_or("");
        let msg = skip_structured_data(rest)?;
        let msg = msg.strip_prefix('\u{feff}').unwrap_or(msg);
        Some(SyslogLine {
            time_us: if stamp == "-" {
                None
            } else {
                parse_iso(stamp, &self.tz).map(micros)
            },
            host,
            ident: app,
            pid: procid.and_then(|p| p.parse().ok()),
            message: msg,
        })
    }

    /// The year of a year-less date: this year, unless that is more than a day ahead of now.
    fn infer_year(&self, mon: i8, day: i8) -> Option<i16> {
        let now = self.tz.to_datetime(self.now);
        let year = now.year();
        let this = Date::new(year, mon, day).or_else(|_| Date::new(year - 1, mon, day));
        let this = this.ok()?;
        let tomorrow = now.date().tomorrow().ok()?;
        Some(if this > tomorrow { year - 1 } else { year })
    }
}

fn micros(ts: Timestamp) -> u64 {
    u64::try_from(ts.as_microsecond()).unwrap_or(0)
}

fn nil(s: &str) -> Option<&str> {
    (s != "-").then_some(s)
}

fn strip_pri(s: &str) -> (bool, &str) {
    if let Some(r) = s.strip_prefix('<') {
        if let Some((num, rest)) = r.split_once('>') {
            if (1..=3).contains(&num.len()) && num.bytes().all(|b| b.is_ascii_digit()) {
                return (true, rest);
            }
        }
    }
    (false, s)
}

fn parse_clock(s: &str) -> Option<Time> {
    let b = s.as_bytes();
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let n = |i: usize| -> Option<i8> { s.get(i..i + 2)?.parse().ok() };
    Time::new(n(0)?, n(3)?, n(6)?, 0).ok()
}

/// An RFC 3339 timestamp, or one with a `+HHMM` offset (journalctl short-iso), or none
/// (local time).
fn parse_iso(s: &str, tz: &TimeZone) -> Option<Timestamp> {
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Some(ts);
    }
    // +HHMM → +HH:MM
    let b = s.as_bytes();
    if b.len() > 5 {
        let (head, off) = s.split_at(s.len() - 5);
        if (off.starts_with('+') || off.starts_with('-'))
            && off[1..].bytes().all(|c| c.is_ascii_digit())
        {
            let fixed = format!("{head}{}:{}", &off[..3], &off[3..]);
            if let Ok(ts) = fixed.parse::<Timestamp>() {
                return Some(ts);
            }
        }
    }
    let dt: DateTime = s.parse().ok()?;
    tz.to_timestamp(dt).ok()
}

/// After the timestamp: `host ident[pid]: msg` (or `host ident: msg`).
fn header_rest(s: &str, ts: Option<Timestamp>) -> Option<SyslogLine<'_>> {
    let (host, rest) = s.split_once(' ')?;
    if host.is_empty() {
        return None;
    }
    let colon = rest
        .find(": ")
        .or_else(|| rest.ends_with(':').then(|| rest.len() - 1))?;
    let tag = &rest[..colon];
    if tag.is_empty() || tag.contains(' ') {
        return None;
    }
    let message = rest.get(colon + 2..).unwrap_or("");
    let (ident, pid) = match tag.strip_suffix(']').and_then(|t| t.rsplit_once('[')) {
        Some((ident, pid)) => (ident, Some(pid.parse::<u32>().ok()?)),
        None => (tag, None),
    };
    Some(SyslogLine {
        time_us: ts.map(micros),
        host: Some(host),
        ident: Some(ident),
        pid,
        message,
    })
}

/// Skip RFC 5424 STRUCTURED-DATA (`-` or `[id k="v" …]…`) and the space after it.
fn skip_structured_data(s: &str) -> Option<&str> {
    if let Some(r) = s.strip_prefix('-') {
        return Some(r.strip_prefix(' ').unwrap_or(r));
    }
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i] == b'[' {
        let mut in_quote = false;
        i += 1;
        loop {
            let c = *b.get(i)?;
            match c {
                b'\\' if in_quote => i += 1,
                b'"' => in_quote = !in_quote,
                b']' if !in_quote => break,
                _ => {}
            }
            i += 1;
        }
        i += 1;
    }
    let r = &s[i..];
    Some(r.strip_prefix(' ').unwrap_or(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser() -> SyslogParser {
        let now: Timestamp = "2026-12-02T12:00:00Z".parse().unwrap();
        SyslogParser::new(TimeZone::UTC, now)
    }

    fn ts(s: &str) -> u64 {
        micros(s.parse::<Timestamp>().unwrap())
    }

    #[test]
    fn rfc3164_with_space_padded_day() {
        let l = parser().parse(
            "Dec  1 10:00:00 web1 sshd[812]: Failed password for root from 192.0.2.9 port 22 ssh2",
        );
        assert_eq!(l.ident, Some("sshd"));
        assert_eq!(l.pid, Some(812));
        assert_eq!(l.host, Some("web1"));
        assert_eq!(l.time_us, Some(ts("2026-12-01T10:00:00Z")));
        assert!(l.message.starts_with("Failed password"));
    }

    #[test]
    fn rfc3164_year_rolls_back_for_future_dates() {
        // Late December lines read on 2 December are last year's.
        let l = parser().parse("Dec 28 23:59:59 h cron[1]: x");
        assert_eq!(l.time_us, Some(ts("2025-12-28T23:59:59Z")));
        let l = parser().parse("Dec 03 00:00:01 h cron[1]: x");
        assert_eq!(l.time_us, Some(ts("2026-12-03T00:00:01Z")));
    }

    #[test]
    fn rsyslog_iso_and_short_iso() {
        let l = parser().parse("2026-12-01T10:00:00.123456+01:00 mx postfix/smtpd[44]: lost connection after AUTH from unknown[192.0.2.1]");
        assert_eq!(l.ident, Some("postfix/smtpd"));
        assert_eq!(l.time_us, Some(ts("2026-12-01T09:00:00.123456Z")));
        let l = parser().parse("2026-12-01T10:00:00+0000 h sshd[5]: hello");
        assert_eq!(l.time_us, Some(ts("2026-12-01T10:00:00Z")));
        assert_eq!(l.message, "hello");
    }

    #[test]
    fn rfc5424() {
        let l = parser().parse(r#"<38>1 2026-12-01T10:00:00Z host sshd 77 - [meta x="a]b"] Invalid user a from 192.0.2.3 port 1"#);
        assert_eq!(l.ident, Some("sshd"));
        assert_eq!(l.pid, Some(77));
        assert_eq!(l.message, "Invalid user a from 192.0.2.3 port 1");
        let l = parser().parse("<38>1 - - app - - - msg");
        assert_eq!(l.time_us, None);
        assert_eq!(l.message, "msg");
    }

    #[test]
    fn ident_without_pid_and_plain_messages() {
        let l = parser().parse("Dec  1 10:00:00 h kernel: [ 12.3] x");
        assert_eq!(l.ident, Some("kernel"));
        assert_eq!(l.pid, None);
        let plain = "Failed password for root from 192.0.2.9 port 22 ssh2";
        let l = parser().parse(plain);
        assert_eq!((l.ident, l.message), (None, plain));
        // Looks like a date but is a message.
        let l = parser().parse("2026 was a good year: 192.0.2.1");
        assert_eq!(l.ident, None);
    }

    #[test]
    fn forged_ident_cannot_carry_a_fake_pid() {
        let l = parser().parse("Dec  1 10:00:00 h sshd[12x]: m");
        assert_eq!(l.ident, None, "a malformed pid makes the line plain text");
    }
}
