//! Syslog text lines: the formats admins have in /var/log/auth.log, mail.log, secure, messages.
//!
//! Recognised per line (a file may mix them):
//! - RFC 3164 / BSD: `Dec  1 10:00:00 host ident[pid]: msg` (no year, local time; journalctl's
//!   `short` output zero-pads the day: `Dec 01`);
//! - rsyslog's ISO form (Debian 12+ default) and journalctl `short-iso`:
//!   `2026-12-01T10:00:00.123456+00:00 host ident[pid]: msg`;
//! - RFC 5424: `<PRI>1 2026-12-01T10:00:00Z host app procid msgid [sd] msg`.
//!
//! Variants found in real files are read too: an optional `<PRI>` before RFC 3164/ISO lines;
//! an ISO timestamp with a space instead of `T` and an offset with or without a space
//! (`2026-12-01 10:00:00 +0000`); a `<facility.priority>` token after the timestamp (rsyslog
//! and syslog-ng templates); no hostname (`Dec  1 10:00:00 sshd[5]: msg`, local logging
//! without a host field); no timestamp (`host ident[pid]: msg`, journal exports and relays; the
//! pid is required then, so that a plain message is not taken for a header); no `:` after
//! `ident[pid]`; `[ident]:` for the tag; RouterOS' topics for the tag (`system,error,critical`); Solaris' `[ID N facility.priority]` before the message.
//!
//! A service's own log file in the same shape, `TIMESTAMP PREFIX: LEVEL: msg` without a host
//! (Dovecot's `log_path`: `imap-login: Info: …`; BIND's channels with print-category and
//! print-severity: `security: info: …`), is not syslog: its prefix names no program, so the
//! line (after the timestamp) is given to every filter as a plain MESSAGE with the time kept.
//!
//! rsyslog's repeated-message reduction writes `message repeated N times: [ msg]` for N
//! identical messages it did not write one by one (the first was written before): the line
//! stands for N entries ([`SyslogLine::repeats`]), so N failed attempts count N times, as they
//! would have without the reduction (at most [`MAX_REPEATS`]).
//!
//! The ident selects which lines a filter sees (the lines of other programs are not given to
//! it), the pid feeds session correlation and the timestamp is the entry time. A line in none
//! of these forms is a plain MESSAGE. Text carries no trusted fields: a file source trusts
//! whoever can write to it.

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
    /// How many entries the line stands for: N for rsyslog's `message repeated N times: [ … ]`
    /// (capped at [`MAX_REPEATS`]), else 1.
    pub repeats: u32,
}

/// A `message repeated N times` line counts as at most this many entries.
pub const MAX_REPEATS: u32 = 1000;

/// Level words that follow a program's own log prefix (`PREFIX: LEVEL: msg`): Dovecot's
/// (`Info`, `Warning`, `Error`, `Fatal`, `Panic`, `Debug`) and BIND's severities.
const OWN_FILE_LEVELS: [&str; 12] = [
    "Info", "Warning", "Error", "Fatal", "Panic", "Debug", "info", "notice", "warning", "error",
    "critical", "debug",
];

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
            repeats: 1,
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
        parsed
            .or_else(|| without_timestamp(rest))
            .map(unwrap_repeated)
            .unwrap_or(plain)
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

    /// `2026-12-01T10:00:00[.frac](Z|+HH:MM|+HHMM) host ident[pid]: msg`, also with a space
    /// for the `T` and before the offset.
    fn iso<'a>(&self, s: &'a str) -> Option<SyslogLine<'a>> {
        let (stamp, rest) = split_iso_stamp(s)?;
        let ts = parse_iso(&stamp, &self.tz)?;
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
            repeats: 1,
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

/// Split an ISO timestamp (`T` or a space between date and time; an offset, `Z`, or none,
/// after an optional space) from the rest of the line; the stamp comes back in RFC 3339 form
/// with a `T`.
fn split_iso_stamp(s: &str) -> Option<(String, &str)> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') {
        return None;
    }
    parse_clock(s.get(11..19)?)?;
    let mut end = 19;
    if b.get(end) == Some(&b'.') || b.get(end) == Some(&b',') {
        end += 1;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
    }
    let mut stamp = format!("{}T{}", &s[..10], &s[11..end]).replace(',', ".");
    let offset_at = |i: usize| -> Option<usize> {
        match b.get(i)? {
            b'Z' => Some(1),
            b'+' | b'-' => {
                let digits = |r: std::ops::Range<usize>| {
                    b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit))
                };
                if digits(i + 1..i + 3) && b.get(i + 3) == Some(&b':') && digits(i + 4..i + 6) {
                    Some(6)
                } else if digits(i + 1..i + 5) {
                    Some(5)
                } else {
                    None
                }
            }
            _ => None,
        }
    };
    let start = if b.get(end) == Some(&b' ') && offset_at(end + 1).is_some() {
        end + 1
    } else {
        end
    };
    if let Some(n) = offset_at(start) {
        stamp.push_str(&s[start..start + n]);
        end = start + n;
    }
    let rest = s.get(end..)?.strip_prefix(' ')?;
    Some((stamp, rest))
}

/// `host ident[pid]: msg` without a timestamp: the pid (and the colon) are required, so that a
/// plain message is not taken for a header.
fn without_timestamp(s: &str) -> Option<SyslogLine<'_>> {
    let (host, rest) = s.split_once(' ')?;
    if host.is_empty()
        || !host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
    {
        return None;
    }
    let (tag, message) = rest.split_once(' ').unwrap_or((rest, ""));
    let Tag {
        ident,
        pid: Some(pid),
        colon: true,
    } = tag_token(tag)?
    else {
        return None;
    };
    Some(SyslogLine {
        time_us: None,
        host: Some(host),
        ident: Some(ident),
        pid: Some(pid),
        message: solaris_msgid(message),
        repeats: 1,
    })
}

/// The tag of a syslog header: `ident:`, `ident[pid]:`, without the colon when a pid is
/// there, `[ident]:`, or RouterOS' topics.
struct Tag<'a> {
    ident: &'a str,
    pid: Option<u32>,
    colon: bool,
}

/// `None` when `t` is no tag, a tag-like token with a malformed pid included (a forged ident
/// cannot carry a fake pid: such a line is no syslog line).
fn tag_token(t: &str) -> Option<Tag<'_>> {
    let (body, colon) = match t.strip_suffix(':') {
        Some(b) => (b, true),
        None => (t, false),
    };
    if body.is_empty() || body.contains(' ') {
        return None;
    }
    if let Some((ident, inner)) = body.strip_suffix(']').and_then(|b| b.rsplit_once('[')) {
        if ident.is_empty() {
            // `[sshd]:`: an ident in brackets, never a number or an address; the colon is
            // required (`[WARNING] …` starts many a program's own log line).
            return (colon && inner.starts_with(|c: char| c.is_ascii_alphabetic())).then_some(
                Tag {
                    ident: inner,
                    pid: None,
                    colon,
                },
            );
        }
        let pid = inner.parse::<u32>().ok()?;
        return Some(Tag {
            ident,
            pid: Some(pid),
            colon,
        });
    }
    (colon && !body.contains('[') || is_topic_list(body)).then_some(Tag {
        ident: body,
        pid: None,
        colon,
    })
}

/// RouterOS writes its topics (`system,error,critical`) where the tag goes, without a colon.
fn is_topic_list(t: &str) -> bool {
    t.contains(',')
        && t.split(',')
            .all(|w| !w.is_empty() && w.bytes().all(|c| c.is_ascii_lowercase()))
}

/// Whether `s` starts with a program's own level word (`Info: `, `error: `, `debug 2: `).
fn starts_with_level(s: &str) -> bool {
    let Some((word, _)) = s.split_once(": ") else {
        return false;
    };
    let word = word
        .strip_prefix("debug ")
        .filter(|n| n.bytes().all(|c| c.is_ascii_digit()))
        .map_or(word, |_| "debug");
    OWN_FILE_LEVELS.contains(&word)
}

/// After the timestamp: `[<facility.priority> ][host ]tag msg` (see [`tag_token`]).
fn header_rest(s: &str, ts: Option<Timestamp>) -> Option<SyslogLine<'_>> {
    let s = skip_facility_token(s);
    let (t1, rest1) = s.split_once(' ').unwrap_or((s, ""));
    if let Some(tag) = tag_token(t1) {
        // No hostname: the first token is the tag (hostnames end in no colon or bracket).
        if tag.colon && tag.pid.is_none() && starts_with_level(rest1) {
            // A program's own log file: its prefix is no program name.
            return Some(SyslogLine {
                time_us: ts.map(micros),
                host: None,
                ident: None,
                pid: None,
                message: s,
                repeats: 1,
            });
        }
        return Some(tagged(ts, None, tag, rest1));
    }
    if t1.is_empty() || rest1.is_empty() {
        return None;
    }
    let (t2, rest2) = rest1.split_once(' ').unwrap_or((rest1, ""));
    let tag = tag_token(t2)?;
    if !tag.colon && tag.pid.is_none() && !is_topic_list(tag.ident) {
        // `host [word] msg`: too weak to be a header.
        return None;
    }
    Some(tagged(ts, Some(t1), tag, rest2))
}

fn tagged<'a>(
    ts: Option<Timestamp>,
    host: Option<&'a str>,
    tag: Tag<'a>,
    message: &'a str,
) -> SyslogLine<'a> {
    SyslogLine {
        time_us: ts.map(micros),
        host,
        ident: Some(tag.ident),
        pid: tag.pid,
        message: solaris_msgid(message),
        repeats: 1,
    }
}

/// rsyslog/syslog-ng templates may write `<mail.info>` after the timestamp.
fn skip_facility_token(s: &str) -> &str {
    let Some(r) = s.strip_prefix('<') else {
        return s;
    };
    match r.split_once("> ") {
        Some((fp, rest))
            if fp.split_once('.').is_some_and(|(f, p)| {
                !f.is_empty()
                    && !p.is_empty()
                    && fp.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'.')
            }) =>
        {
            rest
        }
        _ => s,
    }
}

/// Solaris' syslog writes `[ID 800047 auth.info] ` before the message.
fn solaris_msgid(m: &str) -> &str {
    let Some(r) = m.strip_prefix("[ID ") else {
        return m;
    };
    let Some((inner, rest)) = r.split_once("] ") else {
        return m;
    };
    match inner.split_once(' ') {
        Some((n, fp)) if n.bytes().all(|c| c.is_ascii_digit()) && fp.contains('.') => rest,
        _ => m,
    }
}

/// rsyslog's `message repeated N times: [ msg]` → `msg`, N entries.
fn unwrap_repeated(mut l: SyslogLine<'_>) -> SyslogLine<'_> {
    let inner = l
        .message
        .strip_prefix("message repeated ")
        .and_then(|r| r.split_once(" times: ["))
        .and_then(|(n, r)| Some((n.parse::<u32>().ok()?, r.trim_end().strip_suffix(']')?)));
    if let Some((n, msg)) = inner {
        l.message = msg.trim_start();
        l.repeats = n.clamp(1, MAX_REPEATS);
    }
    l
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

    #[test]
    fn iso_with_a_space_and_an_offset() {
        let l = parser().parse("2026-12-01 10:00:00 +0000 mx postfix/smtpd[9]: hello");
        assert_eq!(
            (l.ident, l.pid, l.message),
            (Some("postfix/smtpd"), Some(9), "hello")
        );
        assert_eq!(l.time_us, Some(ts("2026-12-01T10:00:00Z")));
        let l = parser().parse("2026-12-01 11:00:00.5+0100 mx sshd[9]: hello");
        assert_eq!(l.time_us, Some(ts("2026-12-01T10:00:00.5Z")));
        // Local time without an offset.
        let l = parser().parse("2026-12-01 10:00:00 mx sshd[9]: hello");
        assert_eq!(l.time_us, Some(ts("2026-12-01T10:00:00Z")));
        // A service's own file with an ISO date stays one plain line (exim's mainlog).
        let exim = "2026-12-01 10:00:00 [1234] SMTP call from [192.0.2.1] dropped";
        assert_eq!(parser().parse(exim).ident, None);
        assert_eq!(parser().parse(exim).message, exim);
    }

    #[test]
    fn lines_without_a_hostname() {
        let l = parser().parse("Nov 23 21:50:37 sshd[8148]: Connection closed by 192.0.2.1");
        assert_eq!((l.host, l.ident, l.pid), (None, Some("sshd"), Some(8148)));
        assert_eq!(l.message, "Connection closed by 192.0.2.1");
        let l = parser().parse("Dec  1 10:00:00 cyrus/pop3[42]: badlogin: x");
        assert_eq!((l.host, l.ident), (None, Some("cyrus/pop3")));
        let l = parser().parse("Dec  1 10:00:00 kernel: x");
        assert_eq!((l.host, l.ident, l.message), (None, Some("kernel"), "x"));
    }

    #[test]
    fn lines_without_a_timestamp_need_a_pid() {
        let l = parser().parse("srv sshd[13709]: Invalid user a from 192.0.2.3");
        assert_eq!(
            (l.host, l.ident, l.pid),
            (Some("srv"), Some("sshd"), Some(13709))
        );
        assert_eq!(l.message, "Invalid user a from 192.0.2.3");
        assert_eq!(l.time_us, None);
        // Without a pid, or with a level word for an ident, it is a plain message.
        for m in [
            "srv sshd: Invalid user a from 192.0.2.3",
            "NOTICE[12049]: chan_sip.c: Registration from 'x' failed for '192.0.2.1:5060'",
            "error: PAM: Authentication failure for root from 192.0.2.1",
        ] {
            let l = parser().parse(m);
            assert_eq!((l.ident, l.message), (None, m));
        }
    }

    #[test]
    fn missing_colon_bracketed_ident_and_facility_tokens() {
        let l = parser().parse("Feb  1 00:00:00 myhost proftpd[12345] myhost.example (x): USER");
        assert_eq!((l.ident, l.pid), (Some("proftpd"), Some(12345)));
        assert_eq!(l.message, "myhost.example (x): USER");
        let l = parser().parse("Jun 25 23:53:34 [sshd]: User root from 192.0.2.1 not allowed");
        assert_eq!((l.host, l.ident, l.pid), (None, Some("sshd"), None));
        assert_eq!(l.message, "User root from 192.0.2.1 not allowed");
        // Without the colon, a bracketed word is a program's own level tag.
        let own = "2026-12-01 17:39:54.767815 [WARNING] sofia_reg.c:1533 SIP auth failure";
        assert_eq!(parser().parse(own).ident, None);
        assert_eq!(parser().parse(own).message, own);
        let l = parser().parse("Jun 17 14:37:39 <mail.info> robin sm-mta[2794]: x: from=<>");
        assert_eq!(
            (l.host, l.ident, l.message),
            (Some("robin"), Some("sm-mta"), "x: from=<>")
        );
        let l = parser().parse("Mar 29 05:59:23 h sshd[20]: [ID 800047 auth.info] Failed x");
        assert_eq!(l.message, "Failed x");
        let l = parser().parse("Feb 15 11:25:46 gw.local system,error,critical login failure");
        assert_eq!(
            (l.host, l.ident),
            (Some("gw.local"), Some("system,error,critical"))
        );
        assert_eq!(l.message, "login failure");
        // A word in brackets that is a number or an address is no ident.
        let l = parser().parse("Dec  1 10:00:00 h [192.0.2.1] x");
        assert_eq!(l.ident, None);
    }

    #[test]
    fn a_programs_own_log_file_is_plain_text_after_its_timestamp() {
        let l = parser().parse("Jan 29 09:33:58 pop3-login: Info: Aborted login (auth failed)");
        assert_eq!(l.ident, None);
        assert_eq!(l.message, "pop3-login: Info: Aborted login (auth failed)");
        assert_eq!(l.time_us, Some(ts("2026-01-29T09:33:58Z")));
        let l = parser().parse("2013-08-11 03:56:40 auth-worker(7): Info: pam(u,192.0.2.1): x");
        assert_eq!(
            (l.ident, l.message),
            (None, "auth-worker(7): Info: pam(u,192.0.2.1): x")
        );
        let l = parser().parse("Oct 23 02:06:39 security: info: client @0x7f 192.0.2.8#53: x");
        assert_eq!(
            (l.ident, l.message),
            (None, "security: info: client @0x7f 192.0.2.8#53: x")
        );
        // With a host, the level belongs to the message.
        let l = parser().parse("Dec  1 10:00:00 h dovecot: auth: Error: x");
        assert_eq!((l.ident, l.message), (Some("dovecot"), "auth: Error: x"));
    }

    #[test]
    fn message_repeated_stands_for_n_entries() {
        let l = parser().parse("Dec  1 10:00:00 h sshd[5]: message repeated 3 times: [ Failed password for root from 192.0.2.1 port 22 ssh2]");
        assert_eq!(
            l.message,
            "Failed password for root from 192.0.2.1 port 22 ssh2"
        );
        assert_eq!(l.repeats, 3);
        let l = parser().parse("Dec  1 10:00:00 h sshd[5]: message repeated 99999999 times: [ x]");
        assert_eq!(l.repeats, MAX_REPEATS);
        let l = parser().parse("Dec  1 10:00:00 h sshd[5]: message repeated 3 times: [ x");
        assert_eq!((l.repeats, l.message), (1, "message repeated 3 times: [ x"));
    }
}
