//! One fail2ban configuration file, read the way Python's `configparser` reads it for
//! fail2ban (`SafeConfigParserWithIncludes`): `[section]` headers (the name is everything
//! between the first `[` and the last `]`), `name = value` or `name: value` (the first `=` or
//! `:` splits), option names lowercased, values continued on deeper-indented lines (joined
//! with newlines, blank lines kept inside, trailing blank lines dropped), full-line comments
//! starting with `#` or `;`, inline comments after whitespace + `;`. A duplicate option in one
//! section of one file is an error, as in Python's strict mode.
//!
//! Every value remembers the file and line it was written on, for the import report.

use std::collections::BTreeMap;

use crate::location::Location;

/// A value as written (multi-line values joined with `\n`) and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub text: String,
    pub loc: Location,
}

impl Value {
    pub fn new(text: impl Into<String>, loc: Location) -> Value {
        Value {
            text: text.into(),
            loc,
        }
    }
}

/// Options of one section, by lowercased name.
pub type Options = BTreeMap<String, Value>;

/// One parsed file.
#[derive(Debug, Clone, Default)]
pub struct IniFile {
    pub path: String,
    /// `[DEFAULT]`.
    pub defaults: Options,
    /// Every other section, in the order first seen.
    pub sections: Vec<(String, Options)>,
    /// The file's lines, to find where a construct was written.
    pub lines: Vec<String>,
}

/// A syntax error, with the file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{loc}: {msg}")]
pub struct IniError {
    pub loc: Location,
    pub msg: String,
}

/// Where the option being read goes.
enum Target {
    None,
    Defaults,
    Section(usize),
}

impl IniFile {
    /// Parse `text` (the contents of `path`).
    pub fn parse(path: &str, text: &str) -> Result<IniFile, IniError> {
        let mut file = IniFile {
            path: path.to_string(),
            lines: text.lines().map(str::to_string).collect(),
            ..IniFile::default()
        };
        let mut target = Target::None;
        // (option name, line of its first line, collected lines)
        let mut current: Option<(String, usize, Vec<String>)> = None;
        let mut indent_level = 0usize;
        let mut seen: Vec<(String, String)> = Vec::new();
        let mut section_name = String::new();
        for (i, line) in text.lines().enumerate() {
            let lineno = i + 1;
            let comment_start = comment_start(line);
            let value = match comment_start {
                Some(c) => line[..c].trim(),
                None => line.trim(),
            };
            if value.is_empty() {
                // A blank line without a comment belongs to the value being read.
                if comment_start.is_none() {
                    if let Some((_, _, lines)) = current.as_mut() {
                        lines.push(String::new());
                    }
                }
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            if current.is_some() && indent > indent_level {
                if let Some((_, _, lines)) = current.as_mut() {
                    lines.push(value.to_string());
                }
                continue;
            }
            file.finish(&target, current.take());
            indent_level = indent;
            if let Some(name) = section_header(value) {
                section_name = name.to_string();
                target = if name == "DEFAULT" {
                    Target::Defaults
                } else {
                    match file.sections.iter().position(|(n, _)| n == name) {
                        Some(p) => {
                            return Err(IniError {
                                loc: Location::new(path, lineno),
                                msg: format!(
                                "section [{name}] appears twice in this file (first at section {})",
                                p + 1
                            ),
                            })
                        }
                        None => {
                            file.sections.push((name.to_string(), Options::new()));
                            Target::Section(file.sections.len() - 1)
                        }
                    }
                };
                continue;
            }
            if matches!(target, Target::None) {
                return Err(IniError {
                    loc: Location::new(path, lineno),
                    msg: format!("{line:?} comes before any [section] header"),
                });
            }
            let Some(split) = value.find(['=', ':']) else {
                return Err(IniError {
                    loc: Location::new(path, lineno),
                    msg: format!("{value:?} is neither `name = value` nor a [section] header"),
                });
            };
            let name = value[..split].trim_end().to_lowercase();
            if name.is_empty() {
                return Err(IniError {
                    loc: Location::new(path, lineno),
                    msg: format!("{value:?} has no option name"),
                });
            }
            if seen.iter().any(|(s, n)| *s == section_name && *n == name) {
                return Err(IniError {
                    loc: Location::new(path, lineno),
                    msg: format!("option {name:?} is set twice in [{section_name}]"),
                });
            }
            seen.push((section_name.clone(), name.clone()));
            let first = value[split + 1..].trim().to_string();
            current = Some((name, lineno, vec![first]));
        }
        file.finish(&target, current.take());
        Ok(file)
    }

    fn finish(&mut self, target: &Target, current: Option<(String, usize, Vec<String>)>) {
        let Some((name, line, lines)) = current else {
            return;
        };
        let text = lines.join("\n").trim_end().to_string();
        let v = Value::new(text, Location::new(&self.path, line));
        match target {
            Target::None => {}
            Target::Defaults => {
                self.defaults.insert(name, v);
            }
            Target::Section(i) => {
                self.sections[*i].1.insert(name, v);
            }
        }
    }

    /// The options of a section of this file.
    pub fn section(&self, name: &str) -> Option<&Options> {
        self.sections
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, o)| o)
    }
}

/// Where a comment starts: a line whose first non-blank is `#` or `;`, or `;` at the start
/// or after whitespace.
fn comment_start(line: &str) -> Option<usize> {
    let t = line.trim_start();
    if t.starts_with('#') || t.starts_with(';') {
        return Some(0);
    }
    let b = line.as_bytes();
    (0..b.len()).find(|&i| b[i] == b';' && (i == 0 || (b[i - 1] as char).is_whitespace()))
}

/// `[name]`: everything between the first `[` and the last `]` (Python's permissive regex).
fn section_header(value: &str) -> Option<&str> {
    let rest = value.strip_prefix('[')?;
    let end = rest.rfind(']')?;
    (end > 0).then(|| &rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_configparser_rules() {
        let text = "\
# comment
[DEFAULT]
bantime  = 10m ; inline
Maxretry: 5
[sshd]
port    = ssh
logpath = %(sshd_log)s
failregex = ^a <HOST>$
            # a commented regex inside the list

            ^b <HOST>$

enabled = true
[weird] section
x=1;not a comment
";
        let f = IniFile::parse("jail.local", text).unwrap();
        assert_eq!(f.defaults["bantime"].text, "10m");
        assert_eq!(f.defaults["maxretry"].text, "5");
        assert_eq!(f.defaults["maxretry"].loc.line, 4);
        let s = f.section("sshd").unwrap();
        assert_eq!(s["failregex"].text, "^a <HOST>$\n\n^b <HOST>$");
        assert_eq!(s["failregex"].loc.to_string(), "jail.local:8");
        assert_eq!(s["enabled"].text, "true");
        assert_eq!(f.section("weird").unwrap()["x"].text, "1;not a comment");
    }

    #[test]
    fn errors_name_the_line() {
        let e = IniFile::parse("a.conf", "x = 1\n").unwrap_err();
        assert_eq!(e.loc.to_string(), "a.conf:1");
        let e = IniFile::parse("a.conf", "[s]\nx = 1\nX = 2\n").unwrap_err();
        assert_eq!(e.loc.to_string(), "a.conf:3");
        assert!(e.msg.contains("twice"), "{e}");
        let e = IniFile::parse("a.conf", "[s]\njust words\n").unwrap_err();
        assert_eq!(e.loc.line, 2);
    }
}
