//! fail2ban's stock filters in f2b: same-named filters, the modes they correspond to, and
//! whether a filter file is the one the distribution shipped (dpkg's conffile checksums).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use md5::{Digest, Md5};

use crate::filter::library::FilterLibrary;

/// Where dpkg keeps the checksums of the packaged configuration files.
pub const DPKG_STATUS: &str = "/var/lib/dpkg/status";

/// fail2ban modes whose f2b name or meaning differs: (filter, fail2ban mode, f2b mode, what
/// changes). Modes not listed map to the same name when the f2b filter has it.
const MODES: &[(&str, &str, &str, &str)] = &[
    ("postfix", "auth", "normal", "fail2ban's postfix auth (SASL failures) is f2b's normal"),
    ("postfix", "normal", "rejects", "fail2ban's postfix normal (rejects) is f2b's rejects"),
    ("postfix", "extra", "more", "fail2ban's postfix extra (auth + normal) is f2b's more (SASL failures, rejects and RBL rejects)"),
    ("nginx-http-auth", "auth", "normal", "fail2ban's auth is f2b's normal"),
    ("nginx-http-auth", "fallback", "normal", "TLS handshake failures (fail2ban's fallback) are not in f2b's nginx-http-auth"),
    ("nginx-http-auth", "aggressive", "normal", "TLS handshake failures (fail2ban's fallback) are not in f2b's nginx-http-auth; f2b's aggressive means requests without credentials"),
    ("traefik-auth", "ddos", "aggressive", "f2b's traefik-auth has no ddos mode; aggressive counts 401s with and without a user"),
];

/// The f2b mode for a stock fail2ban filter in `mode`, and a note when the meaning changes.
pub fn map_mode(
    lib: &FilterLibrary,
    filter: &str,
    mode: Option<&str>,
) -> (Option<String>, Option<String>) {
    let Some(def) = lib.get(filter) else {
        return (None, None);
    };
    let has_modes = def.modes().next().is_some();
    let Some(mode) = mode else {
        return (None, None);
    };
    if let Some((_, _, to, why)) = MODES.iter().find(|(f, m, _, _)| *f == filter && *m == mode) {
        return (
            Some(to.to_string()),
            Some(format!("mode {mode} → {to}: {why}")),
        );
    }
    if !has_modes {
        return (None, None);
    }
    if def.modes().any(|m| m == mode) {
        return (Some(mode.to_string()), None);
    }
    let default = def.default_mode.clone();
    let note = format!(
        "f2b's {filter} has no mode {mode:?} (modes: {}); using {}",
        def.mode_list(),
        default.as_deref().unwrap_or("its default")
    );
    (default, Some(note))
}

/// Is this file the packaged one?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packaged {
    /// Every file matches the package's checksum.
    Yes,
    /// This file differs from what the package installed.
    Modified(String),
    /// No checksum known for this file (no dpkg, or not a packaged file).
    Unknown(String),
}

/// dpkg's checksums of fail2ban's conffiles, by path under `/etc/fail2ban/`.
#[derive(Debug, Clone, Default)]
pub struct Checksums {
    md5: BTreeMap<String, String>,
}

impl Checksums {
    /// Read dpkg's status file (empty when there is none).
    pub fn load(status: &Path) -> Checksums {
        let Ok(text) = fs::read_to_string(status) else {
            return Checksums::default();
        };
        let mut md5 = BTreeMap::new();
        for stanza in text.split("\n\n") {
            if !stanza.lines().any(|l| l == "Package: fail2ban") {
                continue;
            }
            let mut in_conffiles = false;
            for line in stanza.lines() {
                if line.starts_with("Conffiles:") {
                    in_conffiles = true;
                    continue;
                }
                if !line.starts_with(' ') {
                    in_conffiles = false;
                    continue;
                }
                if in_conffiles {
                    let mut w = line.split_whitespace();
                    if let (Some(p), Some(sum)) = (w.next(), w.next()) {
                        if let Some(rel) = p.strip_prefix("/etc/fail2ban/") {
                            md5.insert(rel.to_string(), sum.to_string());
                        }
                    }
                }
            }
        }
        Checksums { md5 }
    }

    /// Whether `files` (paths under `from`) are all as packaged.
    pub fn verify(&self, from: &Path, files: &[String]) -> Packaged {
        for f in files {
            let rel = Path::new(f)
                .strip_prefix(from)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| f.clone());
            let Some(want) = self.md5.get(&rel) else {
                return Packaged::Unknown(f.clone());
            };
            let Ok(bytes) = fs::read(f) else {
                return Packaged::Unknown(f.clone());
            };
            let got = Md5::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>();
            if &got != want {
                return Packaged::Modified(f.clone());
            }
        }
        Packaged::Yes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_map_by_meaning() {
        let lib = FilterLibrary::load(&[]).unwrap();
        assert_eq!(
            map_mode(&lib, "sshd", Some("normal")),
            (Some("normal".into()), None)
        );
        assert_eq!(
            map_mode(&lib, "sshd", Some("extra")),
            (Some("extra".into()), None)
        );
        assert_eq!(
            map_mode(&lib, "postfix", Some("auth")).0.as_deref(),
            Some("normal")
        );
        assert_eq!(
            map_mode(&lib, "postfix", Some("normal")).0.as_deref(),
            Some("rejects")
        );
        assert_eq!(map_mode(&lib, "cyrus-imap", Some("normal")), (None, None));
        let (m, note) = map_mode(&lib, "squid", Some("weird"));
        assert_eq!(m.as_deref(), Some("normal"));
        assert!(note.unwrap().contains("weird"));
        // Every f2b mode named in the table exists.
        for (f, _, to, _) in MODES {
            assert!(lib.get(f).unwrap().modes().any(|m| m == *to), "{f} {to}");
        }
    }

    #[test]
    fn dpkg_checksums() {
        let d = tempfile::tempdir().unwrap();
        let status = d.path().join("status");
        fs::write(
            &status,
            "Package: other\nConffiles:\n /etc/fail2ban/x.conf 0\n\n\
             Package: fail2ban\nStatus: install ok installed\nConffiles:\n \
             /etc/fail2ban/filter.d/a.conf 0cc175b9c0f1b6a831c399e269772661\n \
             /etc/fail2ban/filter.d/b.conf 00000000000000000000000000000000\nDescription: x\n",
        )
        .unwrap();
        let sums = Checksums::load(&status);
        let from = d.path().join("etc");
        fs::create_dir_all(from.join("filter.d")).unwrap();
        for n in ["a", "b", "c"] {
            fs::write(from.join(format!("filter.d/{n}.conf")), "a").unwrap();
        }
        let p = |n: &str| {
            vec![from
                .join(format!("filter.d/{n}.conf"))
                .display()
                .to_string()]
        };
        assert_eq!(sums.verify(&from, &p("a")), Packaged::Yes);
        assert!(matches!(sums.verify(&from, &p("b")), Packaged::Modified(_)));
        assert!(matches!(sums.verify(&from, &p("c")), Packaged::Unknown(_)));
    }
}
