//! The timestamps services write at the start of their own log lines (files that are not
//! syslog): the date forms a filter declares with `datepattern` (see f2b.filter(5)).
//!
//! | name | example | zone |
//! |---|---|---|
//! | `clf` | `192.0.2.1 - - [10/Oct/2026:13:55:36 +0200] "GET / …"` | the line's |
//! | `nginx-error` | `2026/10/10 13:55:36 [error] 12#12: …` | local |
//! | `iso8601` | `2026-10-10T13:55:36.123+02:00 …`, `[2026-10-10 13:55:36] …`, `t=2026-…` | the line's, else local |
//! | `apache-error` | `[Sat Oct 10 13:55:36.123456 2026] [auth_basic:error] …` | local |
//!
//! Times without a zone are local times of the host (jiff reads `TZ` and /etc/localtime).
//! Client text in a line comes after the service's timestamp, except in the Common Log
//! Format, where a user name (basic authentication) precedes it: there the date is the one
//! that closes right before the quoted request (`] "`), which a logged user name cannot
//! contain (Apache and nginx escape `"` in it).

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{Offset, TimeZone};
use jiff::Timestamp;

/// A date form of `datepattern`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DateForm {
    Clf,
    NginxError,
    Iso8601,
    ApacheError,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// How far into a line an ISO-8601 timestamp is looked for.
const ISO_WITHIN: usize = 48;

impl DateForm {
    /// Every form, with its name in filter files.
    pub const ALL: [(&'static str, DateForm); 4] = [
        ("clf", DateForm::Clf),
        ("nginx-error", DateForm::NginxError),
        ("iso8601", DateForm::Iso8601),
        ("apache-error", DateForm::ApacheError),
    ];

    /// The form named `name` in a filter file.
    pub fn from_name(name: &str) -> Result<DateForm, String> {
        DateForm::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                let names: Vec<&str> = DateForm::ALL.iter().map(|(n, _)| *n).collect();
                format!("unknown date form {name:?} (known: {})", names.join(", "))
            })
    }

    pub fn name(self) -> &'static str {
        DateForm::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map(|(n, _)| *n)
            .expect("every form is named")
    }

    /// The time of `line` in this form (µs since the epoch), local times in `tz`.
    pub fn find(self, line: &str, tz: &TimeZone) -> Option<u64> {
        let ts = match self {
            DateForm::Clf => clf(line),
            DateForm::NginxError => nginx_error(line, tz),
            DateForm::Iso8601 => iso(line, tz),
            DateForm::ApacheError => apache_error(line, tz),
        }?;
        u64::try_from(ts.as_microsecond()).ok()
    }
}

/// The first of `forms` that finds a time in `line`.
pub fn find_any(forms: &[DateForm], line: &str, tz: &TimeZone) -> Option<u64> {
    forms.iter().find_map(|f| f.find(line, tz))
}

fn num<T: std::str::FromStr>(s: &str, at: usize, len: usize) -> Option<T> {
    let part = s.get(at..at + len)?;
    if !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

fn month(s: &str, at: usize) -> Option<i8> {
    let m = s.get(at..at + 3)?;
    MONTHS.iter().position(|x| *x == m).map(|i| i as i8 + 1)
}

/// `HH:MM:SS` at `at`.
fn clock(s: &str, at: usize) -> Option<Time> {
    let b = s.as_bytes();
    if b.get(at + 2) != Some(&b':') || b.get(at + 5) != Some(&b':') {
        return None;
    }
    Time::new(num(s, at, 2)?, num(s, at + 3, 2)?, num(s, at + 6, 2)?, 0).ok()
}

/// `.ffffff` at `at` (1–9 digits): the nanoseconds and the length taken.
fn fraction(s: &str, at: usize) -> (i32, usize) {
    let b = s.as_bytes();
    if b.get(at) != Some(&b'.') && b.get(at) != Some(&b',') {
        return (0, 0);
    }
    let digits = b[at + 1..]
        .iter()
        .take(9)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if digits == 0 {
        return (0, 0);
    }
    let mut nanos: i32 = s[at + 1..at + 1 + digits].parse().unwrap_or(0);
    for _ in digits..9 {
        nanos *= 10;
    }
    (nanos, digits + 1)
}

fn local(dt: DateTime, tz: &TimeZone) -> Option<Timestamp> {
    tz.to_timestamp(dt).ok()
}

/// `+HHMM`, `+HH:MM`, `+HH` or `Z` at `at`.
fn offset(s: &str, at: usize) -> Option<Offset> {
    let b = s.as_bytes();
    let sign = match b.get(at)? {
        b'Z' | b'z' => return Some(Offset::UTC),
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let h: i32 = num(s, at + 1, 2)?;
    let m: i32 = match b.get(at + 3) {
        Some(b':') => num(s, at + 4, 2)?,
        Some(c) if c.is_ascii_digit() => num(s, at + 3, 2)?,
        _ => 0,
    };
    if h > 23 || m > 59 {
        return None;
    }
    Offset::from_seconds(sign * (h * 3600 + m * 60)).ok()
}

/// `dd/Mon/yyyy:HH:MM:SS +zzzz` at `at` (inside the brackets).
fn clf_at(s: &str, at: usize) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.get(at + 2) != Some(&b'/') || b.get(at + 6) != Some(&b'/') || b.get(at + 11) != Some(&b':')
    {
        return None;
    }
    let date = Date::new(num(s, at + 7, 4)?, month(s, at + 3)?, num(s, at, 2)?).ok()?;
    let time = clock(s, at + 12)?;
    if b.get(at + 20) != Some(&b' ') {
        return None;
    }
    let off = offset(s, at + 21)?;
    off.to_timestamp(DateTime::from_parts(date, time)).ok()
}

fn clf(line: &str) -> Option<Timestamp> {
    // The date right before the quoted request: `[…] "`.
    if let Some(end) = line.find("] \"") {
        if end >= 26 {
            if let Some(ts) = line
                .get(end - 26..end)
                .and_then(|_| line.get(end - 27..end - 26))
                .filter(|open| *open == "[")
                .and_then(|_| clf_at(line, end - 26))
            {
                return Some(ts);
            }
        }
    }
    // Other formats: the first bracketed date.
    let mut from = 0;
    while let Some(i) = line.get(from..)?.find('[') {
        let at = from + i + 1;
        if let Some(ts) = clf_at(line, at) {
            return Some(ts);
        }
        from = at;
        if from > 512 {
            return None;
        }
    }
    None
}

/// `yyyy/mm/dd HH:MM:SS` at the start of the line.
fn nginx_error(line: &str, tz: &TimeZone) -> Option<Timestamp> {
    let b = line.as_bytes();
    if b.get(4) != Some(&b'/') || b.get(7) != Some(&b'/') || b.get(10) != Some(&b' ') {
        return None;
    }
    let date = Date::new(num(line, 0, 4)?, num(line, 5, 2)?, num(line, 8, 2)?).ok()?;
    local(DateTime::from_parts(date, clock(line, 11)?), tz)
}

/// `yyyy-mm-dd(T| )HH:MM:SS[.f][zone]` at `at`.
fn iso_at(s: &str, at: usize, tz: &TimeZone) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.get(at + 4) != Some(&b'-') || b.get(at + 7) != Some(&b'-') {
        return None;
    }
    if !matches!(b.get(at + 10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let date = Date::new(num(s, at, 4)?, num(s, at + 5, 2)?, num(s, at + 8, 2)?).ok()?;
    let (nanos, flen) = fraction(s, at + 19);
    let time = clock(s, at + 11)?
        .with()
        .subsec_nanosecond(nanos)
        .build()
        .ok()?;
    let dt = DateTime::from_parts(date, time);
    let z = at + 19 + flen;
    let z = if b.get(z) == Some(&b' ') && matches!(b.get(z + 1), Some(b'+' | b'-')) {
        z + 1
    } else {
        z
    };
    match offset(s, z) {
        Some(off) => off.to_timestamp(dt).ok(),
        None => local(dt, tz),
    }
}

/// The first ISO-8601 timestamp in the first [`ISO_WITHIN`] bytes that starts the line or
/// follows `[`, `"`, `=` or a space.
fn iso(line: &str, tz: &TimeZone) -> Option<Timestamp> {
    let b = line.as_bytes();
    let end = b.len().min(ISO_WITHIN);
    (0..end)
        .filter(|&i| i == 0 || matches!(b[i - 1], b'[' | b'"' | b'=' | b' '))
        .filter(|&i| b[i].is_ascii_digit())
        .find_map(|i| iso_at(line, i, tz))
}

/// `[Www Mmm dd HH:MM:SS[.uuuuuu] yyyy]` at the start of the line.
fn apache_error(line: &str, tz: &TimeZone) -> Option<Timestamp> {
    let b = line.as_bytes();
    if b.first() != Some(&b'[') || b.get(4) != Some(&b' ') || b.get(8) != Some(&b' ') {
        return None;
    }
    let mon = month(line, 5)?;
    let day: i8 = line.get(9..11)?.trim_start().parse().ok()?;
    let (nanos, flen) = fraction(line, 20);
    let time = clock(line, 12)?
        .with()
        .subsec_nanosecond(nanos)
        .build()
        .ok()?;
    let y = 20 + flen;
    if b.get(y) != Some(&b' ') || b.get(y + 5) != Some(&b']') {
        return None;
    }
    let date = Date::new(num(line, y + 1, 4)?, mon, day).ok()?;
    local(DateTime::from_parts(date, time), tz)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> u64 {
        u64::try_from(s.parse::<Timestamp>().unwrap().as_microsecond()).unwrap()
    }

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").unwrap_or_else(|_| TimeZone::fixed(Offset::constant(2)))
    }

    #[test]
    fn common_log_format_takes_the_lines_zone() {
        let l =
            r#"192.0.2.1 - alice [10/Oct/2026:13:55:36 -0700] "GET /x HTTP/1.1" 401 0 "-" "ua""#;
        assert_eq!(
            DateForm::Clf.find(l, &TimeZone::UTC),
            Some(ts("2026-10-10T20:55:36Z"))
        );
    }

    #[test]
    fn a_user_name_cannot_set_the_time_of_a_clf_line() {
        // nginx writes `"` in $remote_user as \x22, Apache as \": the fake date is not the one
        // closing before the request.
        let l = r#"192.0.2.1 - x [01/Jan/2001:00:00:00 +0000] \x22 [10/Oct/2026:13:55:36 +0000] "GET / HTTP/1.1" 401 0"#;
        assert_eq!(
            DateForm::Clf.find(l, &TimeZone::UTC),
            Some(ts("2026-10-10T13:55:36Z"))
        );
    }

    #[test]
    fn nginx_error_log_is_local_time() {
        let l = "2026/10/10 13:55:36 [error] 12#12: *1 user \"a\" was not found in \"/h\", client: 192.0.2.1, server: x";
        assert_eq!(
            DateForm::NginxError.find(l, &berlin()),
            Some(ts("2026-10-10T11:55:36Z"))
        );
        assert_eq!(
            DateForm::NginxError.find("2026/13/10 13:55:36 x", &berlin()),
            None
        );
    }

    #[test]
    fn iso8601_forms() {
        let utc = TimeZone::UTC;
        let f = DateForm::Iso8601;
        assert_eq!(
            f.find("2026-10-10T13:55:36.5+02:00 x", &utc),
            Some(ts("2026-10-10T11:55:36.5Z"))
        );
        assert_eq!(
            f.find(
                "[2026-10-10 13:55:36.123][vaultwarden::api::identity][ERROR] x",
                &utc
            ),
            Some(ts("2026-10-10T13:55:36.123Z"))
        );
        assert_eq!(
            f.find(
                "logger=context t=2026-10-10T13:55:36.12+0000 level=info",
                &utc
            ),
            Some(ts("2026-10-10T13:55:36.12Z"))
        );
        assert_eq!(
            f.find("2026-10-10 13:55:36 +0100 x", &utc),
            Some(ts("2026-10-10T12:55:36Z"))
        );
        assert_eq!(
            f.find("2026-10-10 13:55:36 x", &berlin()),
            Some(ts("2026-10-10T11:55:36Z"))
        );
        let late = format!("{} 2026-10-10T13:55:36Z", "x".repeat(60));
        assert_eq!(f.find(&late, &utc), None);
    }

    #[test]
    fn apache_error_log() {
        let l = "[Sat Oct 10 13:55:36.123456 2026] [auth_basic:error] [pid 7] [client 192.0.2.1:5] AH01618: user x not found: /p";
        assert_eq!(
            DateForm::ApacheError.find(l, &TimeZone::UTC),
            Some(ts("2026-10-10T13:55:36.123456Z"))
        );
        let l = "[Sat Oct  3 09:05:06 2026] [error] [client 192.0.2.1] x";
        assert_eq!(
            DateForm::ApacheError.find(l, &TimeZone::UTC),
            Some(ts("2026-10-03T09:05:06Z"))
        );
    }

    #[test]
    fn names_round_trip() {
        for (n, f) in DateForm::ALL {
            assert_eq!(DateForm::from_name(n), Ok(f));
            assert_eq!(f.name(), n);
        }
        assert!(DateForm::from_name("strftime").unwrap_err().contains("clf"));
    }
}
