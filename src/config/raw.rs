//! Raw values: what each key of a table accepts, converted from the parsed TOML one key at a
//! time, so that one wrong key is one error naming it (and the others are still checked).

use std::ops::Range;

use toml::de::DeValue;
use toml::Spanned;

use super::ports::RawPort;
use crate::location::Location;

/// A duration as written: integer seconds or text such as "1h30m".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawDur {
    Int(i64),
    Str(String),
}

/// A value as written, and where.
#[derive(Debug, Clone)]
pub(super) struct Val<T> {
    pub(super) v: T,
    pub(super) loc: Location,
}

/// Conversion of one TOML value into what a key expects.
pub(super) trait FromToml: Sized {
    /// What the key takes, for messages: "an integer", "a list of strings".
    const EXPECTED: &'static str;
    /// `Err` is "found …" text for the message.
    fn from_toml(v: &DeValue<'_>) -> Result<Self, String>;
}

/// `string "three"`, `integer 3`, `a table` … for "expected X, found Y".
fn describe(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => {
            let short: String = s.chars().take(40).collect();
            format!("string {short:?}")
        }
        DeValue::Integer(i) => format!("integer {i}"),
        DeValue::Float(f) => format!("float {f}"),
        DeValue::Boolean(b) => format!("boolean {b}"),
        DeValue::Datetime(d) => format!("date-time {d}"),
        DeValue::Array(_) => "a list".into(),
        DeValue::Table(_) => "a table".into(),
    }
}

fn integer(v: &DeValue<'_>) -> Option<Result<i64, String>> {
    match v {
        DeValue::Integer(i) => Some(
            i64::from_str_radix(i.as_str(), i.radix())
                .map_err(|_| format!("integer {i}, which is too large")),
        ),
        _ => None,
    }
}

impl FromToml for bool {
    const EXPECTED: &'static str = "true or false";
    fn from_toml(v: &DeValue<'_>) -> Result<Self, String> {
        v.as_bool().ok_or_else(|| describe(v))
    }
}

impl FromToml for String {
    const EXPECTED: &'static str = "a string";
    fn from_toml(v: &DeValue<'_>) -> Result<Self, String> {
        v.as_str().map(str::to_string).ok_or_else(|| describe(v))
    }
}

impl FromToml for i64 {
    const EXPECTED: &'static str = "an integer";
    fn from_toml(v: &DeValue<'_>) -> Result<Self, String> {
        integer(v).unwrap_or_else(|| Err(describe(v)))
    }
}

impl FromToml for f64 {
    const EXPECTED: &'static str = "a number";
    fn from_toml(v: &DeValue<'_>) -> Result<Self, String> {
        match v {
            DeValue::Float(f) => f.as_str().parse().map_err(|_| describe(v)),
            _ => integer(v)
                .unwrap_or_else(|| Err(describe(v)))
                .map(|n| n as f64),
        }
    }
}

/// Text, or an integer: durations and ports.
fn text_or_integer<T>(
    v: &DeValue<'_>,
    text: fn(String) -> T,
    int: fn(i64) -> T,
) -> Result<T, String> {
    match v.as_str() {
        Some(s) => Ok(text(s.to_string())),
        None => integer(v).unwrap_or_else(|| Err(describe(v))).map(int),
    }
}

impl FromToml for RawDur {
    const EXPECTED: &'static str = "a duration (\"10m\", \"1h30m\") or a number of seconds";
    fn from_toml(v: &DeValue<'_>) -> Result<Self, String> {
        text_or_integer(v, RawDur::Str, RawDur::Int)
    }
}

impl FromToml for RawPort {
    const EXPECTED: &'static str = "a port number, a range \"8000-8100\" or a service name";
    fn from_toml(v: &DeValue<'_>) -> Result<Self, String> {
        text_or_integer(v, RawPort::Str, RawPort::Int)
    }
}

/// Lists: every element must convert.
pub(super) trait ListOf {
    const EXPECTED: &'static str;
}
impl ListOf for String {
    const EXPECTED: &'static str = "a list of strings";
}
impl ListOf for f64 {
    const EXPECTED: &'static str = "a list of numbers";
}
impl ListOf for RawPort {
    const EXPECTED: &'static str = "a list of ports";
}

impl<T: FromToml + ListOf> FromToml for Vec<T> {
    const EXPECTED: &'static str = <T as ListOf>::EXPECTED;
    fn from_toml(v: &DeValue<'_>) -> Result<Self, String> {
        let list = v.as_array().ok_or_else(|| describe(v))?;
        list.iter()
            .enumerate()
            .map(|(i, e)| {
                T::from_toml(e.get_ref()).map_err(|found| format!("{found} as element {}", i + 1))
            })
            .collect()
    }
}

/// One value of a table, converted; the message names the key and what it expects.
pub(super) fn convert<T: FromToml>(
    value: &Spanned<DeValue<'_>>,
    at: impl Fn(Range<usize>) -> Location,
) -> Result<Val<T>, (Location, String)> {
    let loc = at(value.span());
    match T::from_toml(value.get_ref()) {
        Ok(v) => Ok(Val { v, loc }),
        Err(found) => Err((loc, format!("expected {}, found {found}", T::EXPECTED))),
    }
}

/// The key of `known` closest to `key`, if it is close enough to be a likely typo.
pub(super) fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let (best, dist) = known
        .iter()
        .map(|k| (*k, strsim::damerau_levenshtein(key, k)))
        .min_by_key(|(_, d)| *d)?;
    let room = (key.chars().count() / 3).max(2);
    (dist <= room || best.starts_with(key) || key.starts_with(best)).then_some(best)
}

macro_rules! keys {
    ($(#[$doc:meta])* $ty:ident, $const:ident { $($name:ident : $t:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Default, Clone)]
        pub(super) struct $ty { $( pub(super) $name: Option<Val<$t>>, )* }

        impl $ty {
            /// Set `key` from a value (a later file overrides an earlier one). `Err(None)`:
            /// no such key; `Err(Some(..))`: the value has the wrong type.
            pub(super) fn set(
                &mut self,
                key: &str,
                value: &Spanned<DeValue<'_>>,
                at: impl Fn(std::ops::Range<usize>) -> Location,
            ) -> Result<(), Option<(Location, String)>> {
                match key {
                    $( stringify!($name) => {
                        self.$name = Some(super::raw::convert::<$t>(value, at).map_err(Some)?);
                    } )*
                    _ => return Err(None),
                }
                Ok(())
            }

            /// The keys that are set, with where.
            #[allow(dead_code)]
            pub(super) fn set_keys(&self) -> Vec<(&'static str, Location)> {
                let mut v = Vec::new();
                $( if let Some(x) = &self.$name { v.push((stringify!($name), x.loc.clone())); } )*
                v
            }
        }

        /// Every key this table accepts (for messages, documentation and tests).
        pub const $const: &[&str] = &[$(stringify!($name)),*];
    };
}

pub(super) use keys;

keys! {
    /// The keys of `[defaults]` and `[jail.NAME]`, merged over every file.
    MergedJail, JAIL_KEYS {
        enabled: bool,
        filter: String,
        mode: String,
        source: String,
        watch_jails: Vec<String>,
        matches: Vec<String>,
        extra_matches: Vec<String>,
        maxretry: i64,
        findtime: RawDur,
        bantime: RawDur,
        ignoreip: Vec<String>,
        ignoreself: bool,
        ports: Vec<RawPort>,
        protocol: String,
        action: String,
        ipv4_prefix: i64,
        ipv6_prefix: i64,
        bantime_increment: bool,
        bantime_factor: f64,
        bantime_multipliers: Vec<f64>,
        bantime_maxtime: RawDur,
        bantime_rndtime: RawDur,
        bantime_overalljails: bool,
        bantime_fastrebans: bool,
        max_tracked: i64,
        logpath: Vec<String>,
        actions: Vec<String>,
    }
}

keys! {
    /// The keys of `[daemon]`, merged over every file.
    MergedDaemon, DAEMON_KEYS {
        state_dir: String,
        history_max_age: RawDur,
        filter_dirs: Vec<String>,
    }
}

keys! {
    /// The keys of `[feed.NAME]`, merged over every file.
    MergedFeed, FEED_KEYS {
        enabled: bool,
        url: String,
        path: String,
        refresh: RawDur,
        format: String,
        max_size: i64,
        max_entries: i64,
        ports: Vec<RawPort>,
        protocol: String,
        action: String,
        ignoreip: Vec<String>,
    }
}

keys! {
    /// The keys of `[fleet]` (issue 17), merged over every file.
    MergedFleet, FLEET_KEYS {
        servers: Vec<String>,
        host: String,
        creds_file: String,
        user: String,
        password_file: String,
        tls_cert: String,
        tls_key: String,
        tls_ca: String,
        share: Vec<String>,
        accept: Vec<String>,
        stream: String,
        max_prefix_v4: i64,
        max_prefix_v6: i64,
        max_bans_per_peer_per_minute: i64,
        max_bantime: RawDur,
        replicas: i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> Spanned<DeValue<'_>> {
        DeValue::parse(text).unwrap()
    }

    fn conv<T: FromToml>(text: &str) -> Result<T, String> {
        convert::<T>(&value(text), |_| Location::new("t", 1))
            .map(|v| v.v)
            .map_err(|(_, m)| m)
    }

    #[test]
    fn values_and_messages() {
        assert_eq!(conv::<i64>("0x10").unwrap(), 16);
        assert_eq!(
            conv::<i64>("\"three\"").unwrap_err(),
            "expected an integer, found string \"three\""
        );
        assert_eq!(conv::<f64>("2").unwrap(), 2.0);
        assert_eq!(conv::<RawDur>("\"1h\"").unwrap(), RawDur::Str("1h".into()));
        assert_eq!(
            conv::<Vec<String>>("[\"a\", 3]").unwrap_err(),
            "expected a list of strings, found integer 3 as element 2"
        );
        assert!(conv::<bool>("1").unwrap_err().contains("true or false"));
    }

    #[test]
    fn did_you_mean() {
        assert_eq!(closest("maxretries", JAIL_KEYS), Some("maxretry"));
        assert_eq!(closest("ban_time", JAIL_KEYS), Some("bantime"));
        assert_eq!(closest("ignore_ip", JAIL_KEYS), Some("ignoreip"));
        assert_eq!(closest("port", JAIL_KEYS), Some("ports"));
        assert_eq!(closest("colour", JAIL_KEYS), None);
    }
}
