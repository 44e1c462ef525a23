//! Journal matches: which entries belong to a service, decided on fields a process cannot forge.
//!
//! journald itself sets every field whose name starts with `_` (`_SYSTEMD_UNIT`, `_UID`,
//! `_COMM`, `_PID` …) from the kernel's view of the writer, and drops such fields when a client
//! sends them. `SYSLOG_IDENTIFIER`, `MESSAGE` and the rest are whatever the process wrote:
//! `logger -t sshd "Failed password for root from VICTIM …"` from any local user yields
//! `SYSLOG_IDENTIFIER=sshd`. A jail that believed the identifier would ban any address a local
//! user names.
//!
//! So a match is a list of *alternatives*; each alternative is a conjunction of `FIELD=value`
//! terms (written like `journalctl`'s arguments: `"_SYSTEMD_UNIT=ssh.service _UID=0"`), and
//! every alternative must contain a term that pins the writer down:
//!
//! - `_SYSTEMD_UNIT=` a system unit (globs allowed: `sshd@*.service` for per-connection,
//!   socket-activated units). Only root can put a process into a system unit. Units that hold
//!   users' own processes (`user@….service`, `session-….scope`) do not count.
//! - `_UID=` the user the service runs as (`0` for sshd: its privileged monitor writes the log
//!   lines of the pre-authentication child). A user can rename a process (`_COMM`) or run the
//!   service's binary (`_EXE`), but cannot change its uid.
//!
//! `_COMM`, `_EXE`, `SYSLOG_IDENTIFIER`, `_SYSTEMD_USER_UNIT` and `CONTAINER_NAME` only narrow an
//! alternative down (e.g. `_COMM=sshd _UID=0`: the program sshd, running as root).

use std::ffi::CStr;
use std::fmt;

/// A journal field a match may use. The reader reads exactly these per entry for routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    SystemdUnit,
    Uid,
    Comm,
    Exe,
    SyslogIdentifier,
    SystemdUserUnit,
    SystemdSlice,
    ContainerName,
}

impl Field {
    /// Every field, in index order.
    pub const ALL: [Field; 8] = [
        Field::SystemdUnit,
        Field::Uid,
        Field::Comm,
        Field::Exe,
        Field::SyslogIdentifier,
        Field::SystemdUserUnit,
        Field::SystemdSlice,
        Field::ContainerName,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::SystemdUnit => "_SYSTEMD_UNIT",
            Field::Uid => "_UID",
            Field::Comm => "_COMM",
            Field::Exe => "_EXE",
            Field::SyslogIdentifier => "SYSLOG_IDENTIFIER",
            Field::SystemdUserUnit => "_SYSTEMD_USER_UNIT",
            Field::SystemdSlice => "_SYSTEMD_SLICE",
            Field::ContainerName => "CONTAINER_NAME",
        }
    }

    /// The name as a C string, for `sd_journal_get_data`.
    pub fn cname(self) -> &'static CStr {
        match self {
            Field::SystemdUnit => c"_SYSTEMD_UNIT",
            Field::Uid => c"_UID",
            Field::Comm => c"_COMM",
            Field::Exe => c"_EXE",
            Field::SyslogIdentifier => c"SYSLOG_IDENTIFIER",
            Field::SystemdUserUnit => c"_SYSTEMD_USER_UNIT",
            Field::SystemdSlice => c"_SYSTEMD_SLICE",
            Field::ContainerName => c"CONTAINER_NAME",
        }
    }

    /// Position in [`Field::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    fn parse(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Whether journald sets this field itself (a client cannot supply it).
    pub fn is_trusted(self) -> bool {
        self.name().starts_with('_')
    }
}

/// One `FIELD=value` term. The value may hold `*` and `?` globs (matched on the whole value).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Term {
    pub field: Field,
    pub value: String,
}

impl Term {
    /// Whether the value has glob characters (then sd-journal cannot match it exactly).
    pub fn is_glob(&self) -> bool {
        self.value.contains(['*', '?'])
    }

    /// Does the entry's value of this field satisfy the term?
    pub fn accepts(&self, value: &[u8]) -> bool {
        if self.is_glob() {
            glob(self.value.as_bytes(), value)
        } else {
            self.value.as_bytes() == value
        }
    }

    /// Whether this term alone identifies the writer (see the module docs).
    fn pins_writer(&self) -> bool {
        match self.field {
            Field::Uid => true,
            Field::SystemdUnit => !holds_user_processes(&self.value),
            Field::SystemdSlice => !self.value.starts_with("user"),
            _ => false,
        }
    }
}

/// System units in which users run processes of their own.
fn holds_user_processes(unit: &str) -> bool {
    unit.starts_with('*')
        || unit.starts_with('?')
        || unit.starts_with("user@")
        || unit.starts_with("user-runtime-dir@")
        || unit.starts_with("session-")
        || unit.starts_with("user-")
}

/// `*` matches any run of bytes, `?` one byte. Linear in practice (one backtrack point).
pub(super) fn glob(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pat.len() && (pat[p] == b'?' || pat[p] == s[i]) {
            p += 1;
            i += 1;
        } else if p < pat.len() && pat[p] == b'*' {
            star = Some((p, i));
            p += 1;
        } else if let Some((sp, si)) = star {
            p = sp + 1;
            i = si + 1;
            star = Some((sp, si + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// One alternative: every term must hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JournalMatch {
    pub terms: Vec<Term>,
}

impl JournalMatch {
    /// Parse `"FIELD=value FIELD=value"`; refuses unknown fields, repeated fields, empty values,
    /// and alternatives that do not pin the writer down with a field journald sets.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut terms: Vec<Term> = Vec::new();
        for word in text.split_whitespace() {
            let (name, value) = word
                .split_once('=')
                .ok_or_else(|| format!("journal match {text:?}: {word:?} is not FIELD=value"))?;
            let field = Field::parse(name).ok_or_else(|| {
                format!(
                    "journal match {text:?}: field {name:?} is not one of {}",
                    Field::ALL.map(Field::name).join(", ")
                )
            })?;
            if value.is_empty() {
                return Err(format!("journal match {text:?}: {name} has an empty value"));
            }
            if terms.iter().any(|t| t.field == field) {
                return Err(format!(
                    "journal match {text:?}: {name} appears twice (write alternatives as separate matches)"
                ));
            }
            if field == Field::Uid && value.parse::<u32>().is_err() {
                return Err(format!(
                    "journal match {text:?}: _UID must be a number, not {value:?}"
                ));
            }
            terms.push(Term {
                field,
                value: value.to_string(),
            });
        }
        if terms.is_empty() {
            return Err("journal match is empty".into());
        }
        terms.sort();
        let m = JournalMatch { terms };
        if !m.pins_writer() {
            return Err(format!(
                "journal match {text:?} can be forged: any local user can write journal entries \
                 with {}. Add a field journald sets itself: the service's system unit \
                 (_SYSTEMD_UNIT=NAME.service) or the user it runs as (_UID=0), e.g. \"{text} _UID=0\"",
                m.terms
                    .iter()
                    .map(|t| t.field.name())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ));
        }
        Ok(m)
    }

    /// At least one term identifies the writer (see the module docs).
    pub fn pins_writer(&self) -> bool {
        self.terms.iter().any(Term::pins_writer)
    }

    /// Whether sd-journal can evaluate this alternative exactly (no globs).
    pub fn is_exact(&self) -> bool {
        !self.terms.iter().any(Term::is_glob)
    }

    /// The terms sd-journal can pre-filter on (the exact ones); a superset of the entries.
    pub fn exact_terms(&self) -> impl Iterator<Item = &Term> {
        self.terms.iter().filter(|t| !t.is_glob())
    }

    /// Evaluate against an entry; `value(field)` gives the entry's value of a field, if any.
    pub fn accepts<'a>(&self, mut value: impl FnMut(Field) -> Option<&'a [u8]>) -> bool {
        self.terms
            .iter()
            .all(|t| value(t.field).is_some_and(|v| t.accepts(v)))
    }

    /// The `SYSLOG_IDENTIFIER` or `_COMM` values this alternative names: what a syslog line's
    /// ident is compared with when there are no trusted fields (text input).
    pub fn program_names(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().filter_map(|t| match t.field {
            Field::SyslogIdentifier | Field::Comm => Some(t.value.as_str()),
            // A unit's name without its template instance and suffix: nginx.service → nginx.
            Field::SystemdUnit if !t.is_glob() => {
                t.value.split(['@', '.']).next().filter(|s| !s.is_empty())
            }
            _ => None,
        })
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.field.name(), self.value)
    }
}

impl fmt::Display for JournalMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{t}")?;
        }
        Ok(())
    }
}

impl serde::Serialize for JournalMatch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Whether a syslog ident (text input, no trusted fields) is one of the programs `matches` name.
/// A filter whose matches name no program accepts every ident.
pub fn ident_selected(matches: &[JournalMatch], ident: &str) -> bool {
    let mut named = matches.iter().flat_map(|m| m.program_names()).peekable();
    named.peek().is_none() || names_program(matches, ident)
}

/// Whether `matches` name this program (`SYSLOG_IDENTIFIER`, `_COMM`, or a unit's stem).
pub fn names_program(matches: &[JournalMatch], ident: &str) -> bool {
    // _COMM is cut to 15 bytes by the kernel; compare idents the same way.
    let cut = |s: &str| -> String { s.chars().take(15).collect() };
    (matches.iter().flat_map(|m| m.program_names())).any(|n| n == ident || cut(n) == cut(ident))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry<'a>(fields: &'a [(Field, &'a str)]) -> impl FnMut(Field) -> Option<&'a [u8]> {
        move |f| {
            fields
                .iter()
                .find(|(g, _)| *g == f)
                .map(|(_, v)| v.as_bytes())
        }
    }

    #[test]
    fn identifier_alone_is_refused_as_forgeable() {
        let e = JournalMatch::parse("SYSLOG_IDENTIFIER=sshd").unwrap_err();
        assert!(e.contains("forged"), "{e}");
        assert!(JournalMatch::parse("_COMM=sshd").is_err());
        assert!(JournalMatch::parse("_EXE=/usr/sbin/sshd").is_err());
        assert!(JournalMatch::parse("_SYSTEMD_UNIT=user@1000.service").is_err());
        assert!(JournalMatch::parse("_SYSTEMD_UNIT=session-3.scope").is_err());
        assert!(JournalMatch::parse("_SYSTEMD_UNIT=*.service").is_err());
        assert!(JournalMatch::parse("SYSLOG_IDENTIFIER=sshd _UID=0").is_ok());
        assert!(JournalMatch::parse("_SYSTEMD_UNIT=sshd@*.service").is_ok());
    }

    #[test]
    fn conjunction_needs_every_term() {
        let m = JournalMatch::parse("_COMM=sshd _UID=0").unwrap();
        assert!(m.accepts(entry(&[(Field::Comm, "sshd"), (Field::Uid, "0")])));
        // A user who renamed a process to sshd.
        assert!(!m.accepts(entry(&[(Field::Comm, "sshd"), (Field::Uid, "1000")])));
        assert!(!m.accepts(entry(&[(Field::Comm, "sshd")])));
    }

    #[test]
    fn templated_units_match_by_glob() {
        let m = JournalMatch::parse("_SYSTEMD_UNIT=sshd@*.service").unwrap();
        let unit = "sshd@3-192.0.2.1:22-198.51.100.7:50022.service";
        assert!(m.accepts(entry(&[(Field::SystemdUnit, unit)])));
        assert!(!m.accepts(entry(&[(Field::SystemdUnit, "sshd.service")])));
        assert!(!m.is_exact());
    }

    #[test]
    fn glob_edge_cases() {
        assert!(glob(b"a*b*c", b"axxbyyc"));
        assert!(glob(b"a*", b"a"));
        assert!(!glob(b"a*b", b"a"));
        assert!(glob(b"?x", b"yx"));
        assert!(!glob(b"abc", b"abcd"));
        assert!(glob(b"*", b""));
    }

    #[test]
    fn bad_terms_are_named() {
        assert!(JournalMatch::parse("_UID=root")
            .unwrap_err()
            .contains("number"));
        assert!(JournalMatch::parse("_UID=0 _UID=1")
            .unwrap_err()
            .contains("twice"));
        assert!(JournalMatch::parse("PRIORITY=3 _UID=0")
            .unwrap_err()
            .contains("PRIORITY"));
        assert!(JournalMatch::parse("_UID=").unwrap_err().contains("empty"));
    }

    #[test]
    fn idents_of_text_lines() {
        let ms = vec![
            JournalMatch::parse("_COMM=sshd _UID=0").unwrap(),
            JournalMatch::parse("SYSLOG_IDENTIFIER=sshd-session _UID=0").unwrap(),
        ];
        assert!(ident_selected(&ms, "sshd"));
        assert!(ident_selected(&ms, "sshd-session"));
        assert!(!ident_selected(&ms, "logger"));
        let units = vec![JournalMatch::parse("_SYSTEMD_UNIT=nginx.service").unwrap()];
        assert!(ident_selected(&units, "nginx"));
        assert!(!ident_selected(&units, "anything"));
        let globs = vec![JournalMatch::parse("_SYSTEMD_UNIT=php*-fpm.service").unwrap()];
        assert!(ident_selected(&globs, "anything"));
    }
}
