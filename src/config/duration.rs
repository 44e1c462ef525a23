//! Durations as written in configuration: `"10m"`, `"1h30m"`, `"1d"`, `"2w"`, `"45s"`, or an
//! integer number of seconds. `-1` (or `"forever"`) means permanent where allowed.

use std::fmt;
use std::time::Duration;

use super::raw::RawDur;

/// Parse `"1h30m"`-style text. Units: s, m, h, d, w (also `sec`, `min`, `hour(s)`, `day(s)`,
/// `week(s)`); a bare number is seconds. Returns a message fit for an error line.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total: u64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "bad duration {text:?}: expected a number at {rest:?}"
            ));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("bad duration {text:?}: number too large"))?;
        rest = rest[digits..].trim_start();
        let ulen = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..ulen];
        let mult = match unit {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hour" | "hours" => 3_600,
            "d" | "day" | "days" => 86_400,
            "w" | "week" | "weeks" => 604_800,
            "" => {
                return Err(format!(
                    "bad duration {text:?}: missing unit after {n} (s, m, h, d, w)"
                ))
            }
            u => {
                return Err(format!(
                    "bad duration {text:?}: unknown unit {u:?} (s, m, h, d, w)"
                ))
            }
        };
        total = n
            .checked_mul(mult)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("bad duration {text:?}: too large"))?;
        rest = &rest[ulen..];
    }
    Ok(Duration::from_secs(total))
}

/// A compact human form: `1h30m`, `10m`, `1d2h`, `45s`, `0s`.
pub fn format_duration(d: Duration) -> String {
    let mut s = d.as_secs();
    if s == 0 {
        return if d.is_zero() {
            "0s".into()
        } else {
            format!("{}ms", d.as_millis())
        };
    }
    let mut out = String::new();
    for (unit, len) in [
        ("w", 604_800),
        ("d", 86_400),
        ("h", 3_600),
        ("m", 60),
        ("s", 1),
    ] {
        if s >= len {
            out.push_str(&format!("{}{unit}", s / len));
            s %= len;
        }
    }
    out
}

/// A ban duration: finite or permanent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BanTime {
    For(Duration),
    Forever,
}

impl BanTime {
    pub fn as_duration(self) -> Option<Duration> {
        match self {
            BanTime::For(d) => Some(d),
            BanTime::Forever => None,
        }
    }
}

impl fmt::Display for BanTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BanTime::For(d) => f.write_str(&format_duration(*d)),
            BanTime::Forever => f.write_str("ever"),
        }
    }
}

/// A duration key's value: `-1`, `"forever"` or `"permanent"` mean [`BanTime::Forever`] when
/// `allow_forever`.
pub(super) fn from_raw(raw: &RawDur, allow_forever: bool) -> Result<BanTime, String> {
    match raw {
        RawDur::Int(-1) if allow_forever => Ok(BanTime::Forever),
        RawDur::Int(n) if *n >= 0 => Ok(BanTime::For(Duration::from_secs(*n as u64))),
        RawDur::Int(n) => Err(format!(
            "{n} is not a duration{}",
            if allow_forever {
                " (use -1 or \"forever\" for permanent)"
            } else {
                ""
            }
        )),
        RawDur::Str(s) if allow_forever && matches!(s.trim(), "forever" | "permanent" | "-1") => {
            Ok(BanTime::Forever)
        }
        RawDur::Str(s) => parse_duration(s).map(BanTime::For),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        assert_eq!(parse_duration("600").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86400));
        assert_eq!(
            parse_duration("1w 2d").unwrap(),
            Duration::from_secs(9 * 86400)
        );
        assert_eq!(
            parse_duration("3 hours").unwrap(),
            Duration::from_secs(3 * 3600)
        );
        for bad in ["", "10x", "m", "1.5h", "-5m", "10m x"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(0)), "0s");
        assert_eq!(BanTime::Forever.to_string(), "ever");
    }
}
