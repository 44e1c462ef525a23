//! `[action.NAME]` tables: named actions (webhook, command, mail, abuseipdb) that jails name
//! in `actions = [...]`. Each key is checked on its own and against the action's type; secret
//! files (headers, credentials, API keys) are read here, so that a missing or unreadable one
//! is an error at load naming the file, and their contents never reach a message.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use toml::de::DeValue;
use toml::Spanned;

use super::error::Problems;
use super::fragments::SourceFile;
use super::raw::{closest, keys, FromToml, ListOf, RawDur, Val};
use crate::engine::FLEET_SINK;
use crate::location::Location;
use crate::outbox::{NoticeEvent, Template};

keys! {
    /// The keys of `[action.NAME]` (of every type; [`allowed`] says which a type takes).
    MergedAction, ACTION_FIELDS {
        kind: String,
        events: Vec<String>,
        timeout: RawDur,
        url: String,
        method: String,
        headers: BTreeMap<String, String>,
        headers_file: String,
        content_type: String,
        body: String,
        command: Vec<String>,
        server: String,
        port: i64,
        tls: String,
        from: String,
        to: Vec<String>,
        credentials_file: String,
        digest: RawDur,
        subject: String,
        key_file: String,
        categories: BTreeMap<String, Vec<i64>>,
    }
}

const _: () = assert!(ACTION_FIELDS.len() == ACTION_KEYS.len());

/// Every key `[action.NAME]` accepts (`type` is the field `kind`).
pub const ACTION_KEYS: &[&str] = &[
    "type",
    "events",
    "timeout",
    "url",
    "method",
    "headers",
    "headers_file",
    "content_type",
    "body",
    "command",
    "server",
    "port",
    "tls",
    "from",
    "to",
    "credentials_file",
    "digest",
    "subject",
    "key_file",
    "categories",
];

/// The action types and the keys each takes (besides `type`, `events`, `timeout`).
pub(super) const TYPES: &[(&str, &[&str])] = &[
    (
        "webhook",
        &[
            "url",
            "method",
            "headers",
            "headers_file",
            "content_type",
            "body",
        ],
    ),
    ("command", &["command"]),
    (
        "mail",
        &[
            "server",
            "port",
            "tls",
            "from",
            "to",
            "credentials_file",
            "digest",
            "subject",
            "body",
        ],
    ),
    ("abuseipdb", &["key_file", "categories", "url"]),
];

/// Default `timeout` of a delivery.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Where AbuseIPDB takes reports.
pub const ABUSEIPDB_URL: &str = "https://api.abuseipdb.com/api/v2/report";

impl FromToml for BTreeMap<String, String> {
    const EXPECTED: &'static str = "a table of strings";
    fn from_toml(v: &DeValue<'_>) -> Result<Self, String> {
        table(v, String::from_toml)
    }
}

impl ListOf for i64 {
    const EXPECTED: &'static str = "a list of integers";
}

impl FromToml for BTreeMap<String, Vec<i64>> {
    const EXPECTED: &'static str = "a table of lists of integers (jail = [18, 22])";
    fn from_toml(v: &DeValue<'_>) -> Result<Self, String> {
        table(v, Vec::<i64>::from_toml)
    }
}

fn table<T>(
    v: &DeValue<'_>,
    each: impl Fn(&DeValue<'_>) -> Result<T, String>,
) -> Result<BTreeMap<String, T>, String> {
    let Some(t) = v.as_table() else {
        return Err(match v {
            DeValue::Array(_) => "a list".into(),
            _ => "something else".into(),
        });
    };
    t.iter()
        .map(|(k, e)| {
            let k = k.get_ref().to_string();
            each(e.get_ref())
                .map(|x| (k.clone(), x))
                .map_err(|found| format!("{found} for {k:?}"))
        })
        .collect()
}

/// The contents of a secret file: compared on reload, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    /// The file it was read from (may be printed).
    pub path: PathBuf,
    value: String,
}

impl Secret {
    pub(super) fn new(path: PathBuf, value: String) -> Secret {
        Secret { path, value }
    }

    pub fn expose(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<secret from {}>", self.path.display())
    }
}

/// `tls` of a mail action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailTls {
    /// Plain connection upgraded with STARTTLS (required).
    StartTls,
    /// TLS from the start (port 465).
    Tls,
    /// No encryption (a local relay).
    None,
}

/// What an action does, by type.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionKind {
    Webhook {
        url: String,
        method: String,
        /// Header lines: from `headers`, then from `headers_file` (secret).
        headers: Vec<(String, String)>,
        secret_headers: Option<Secret>,
        content_type: String,
        /// `None`: the JSON of every field.
        body: Option<Template>,
    },
    Command {
        argv: Vec<Template>,
    },
    Mail {
        server: String,
        port: u16,
        tls: MailTls,
        from: String,
        to: Vec<String>,
        /// `user:password`.
        credentials: Option<Secret>,
        /// One mail per this period listing the events; zero: one mail per event.
        digest: Duration,
        /// `None`: [`MAIL_SUBJECT`], or [`DIGEST_SUBJECT`] with a digest.
        subject: Option<Template>,
        body: Template,
    },
    AbuseIpdb {
        key: Secret,
        /// Categories by jail (the others by their filter's family).
        categories: BTreeMap<String, Vec<u8>>,
        url: String,
    },
}

/// One validated `[action.NAME]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionConfig {
    pub name: String,
    pub kind: ActionKind,
    /// The events the action hears of (ban, unban).
    pub events: Vec<NoticeEvent>,
    /// A delivery that takes longer failed (and is retried).
    pub timeout: Duration,
    /// Where the table was declared.
    pub loc: Location,
}

impl ActionConfig {
    /// The type's name, as written in `type`.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            ActionKind::Webhook { .. } => "webhook",
            ActionKind::Command { .. } => "command",
            ActionKind::Mail { .. } => "mail",
            ActionKind::AbuseIpdb { .. } => "abuseipdb",
        }
    }
}

/// Default mail subject and body (per event).
pub const MAIL_SUBJECT: &str = "[f2b] {host}: {event} {address} in {jail}";
/// The subject of a digest (`{count}`: how many events it lists).
pub const DIGEST_SUBJECT: &str = "[f2b] {host}: {count} event(s)";
pub const MAIL_BODY: &str = "{time} {event} {address} in jail {jail} on {host}: {failures} \
                             failure(s), ban time {bantime} s, ban #{bancount}\n{lines}\n";

pub(super) use super::action_resolve::resolve;

/// `[action.NAME]` tables of one file, merged into `actions` (a later file wins per key).
pub(super) fn merge(
    f: &SourceFile,
    value: &Spanned<DeValue<'_>>,
    actions: &mut BTreeMap<String, (MergedAction, Location)>,
    problems: &mut Problems,
) {
    let Some(table) = value.get_ref().as_table() else {
        problems.invalid(
            f.loc(value.span()),
            "action: expected tables [action.NAME], one per action",
        );
        return;
    };
    for (name, action) in table {
        let decl = f.loc(action.span());
        let name = name.get_ref().as_ref();
        if let Err(e) = super::limits::jail_name(name) {
            problems.invalid(decl, e.to_string().replacen("jail", "action", 1));
            continue;
        }
        if name == FLEET_SINK {
            problems.invalid(
                decl,
                format!("[action.{name}]: the name {name:?} is reserved for the fleet"),
            );
            continue;
        }
        let entry = actions
            .entry(name.to_string())
            .or_insert_with(|| (MergedAction::default(), decl.clone()));
        let Some(keys) = action.get_ref().as_table() else {
            problems.invalid(decl, format!("[action.{name}]: expected a table"));
            continue;
        };
        for (key, v) in keys {
            let k = key.get_ref().as_ref();
            let field = match k {
                "type" => "kind",
                "kind" => "",
                k => k,
            };
            match entry.0.set(field, v, |s| f.loc(s)) {
                Ok(()) => {}
                Err(Some((loc, msg))) => {
                    problems.invalid(loc, format!("action {name}: {k}: {msg}"))
                }
                Err(None) => {
                    let mut msg = format!("unknown key {k:?} in [action.{name}]");
                    match closest(k, ACTION_KEYS) {
                        Some(c) => msg.push_str(&format!("; did you mean {c:?}?")),
                        None => msg.push_str(" (see f2b.toml(5) for the keys)"),
                    }
                    problems.invalid(f.loc(key.span()), msg);
                }
            }
        }
    }
}

/// `Name: value` lines of a headers file (blank lines and `#` comments skipped); `Err` is the
/// 1-based number of the first bad line.
pub fn parse_header_lines(text: &str) -> Result<Vec<(String, String)>, usize> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once(':').ok_or(i + 1)?;
        let (k, v) = (k.trim(), v.trim());
        if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err()
            || reqwest::header::HeaderValue::from_str(v).is_err()
        {
            return Err(i + 1);
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// Jails may only name actions that exist.
pub(super) fn check_jail_actions(
    jails: &[super::JailConfig],
    merged: &super::fragments::Merged,
    actions: &BTreeMap<String, (MergedAction, Location)>,
    problems: &mut Problems,
) {
    for j in jails {
        for a in &j.actions {
            if actions.contains_key(a) {
                continue;
            }
            let key = merged
                .jails
                .get(&j.name)
                .and_then(|(mj, _)| mj.actions.as_ref());
            let loc = key
                .or(merged.defaults.actions.as_ref())
                .map_or_else(|| j.loc.clone(), |v| v.loc.clone());
            let known: Vec<&str> = actions.keys().map(String::as_str).collect();
            let mut msg = format!("jail {}: actions: no [action.{a}] is configured", j.name);
            if let Some(c) = closest(a, &known) {
                msg.push_str(&format!("; did you mean {c:?}?"));
            }
            problems.invalid(loc, msg);
        }
    }
}

#[cfg(test)]
#[path = "actions_tests.rs"]
mod tests;
