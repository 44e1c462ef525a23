//! [`Template`]: text with `{field}` placeholders filled from a [`Notice`] — webhook bodies,
//! command arguments, mail subjects and bodies.
//!
//! A placeholder is `{` + a field name + `}` (see [`Notice::FIELDS`]); any other brace is
//! plain text, so JSON bodies are written as they are: `{"text": "banned {address}"}`.
//! Unknown field names are refused when the template is parsed (at configuration load).

use super::Notice;

/// How a value is put into the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// As it is (command arguments, mail text).
    None,
    /// As the inside of a JSON string: quotes, backslashes and control characters escaped
    /// (webhook bodies in JSON, so that a hostile log line cannot break out of its string).
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
}

impl Template {
    /// Parse `text`; the error names the first unknown field. `extra` are more names the
    /// caller fills itself (e.g. `count` in a mail digest).
    pub fn parse(text: &str, extra: &[&str]) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut plain = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let name_len = after
                .find(|c: char| !is_name_char(c))
                .unwrap_or(after.len());
            let name = &after[..name_len];
            let closed = after[name_len..].starts_with('}');
            if name.is_empty() || !closed || !name.starts_with(|c: char| c.is_ascii_lowercase()) {
                plain.push_str(&rest[..open + 1]);
                rest = after;
                continue;
            }
            if !Notice::FIELDS.contains(&name) && !extra.contains(&name) {
                return Err(format!(
                    "unknown field {{{name}}}; the fields are {}",
                    Notice::FIELDS
                        .iter()
                        .chain(extra)
                        .map(|f| format!("{{{f}}}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ));
            }
            plain.push_str(&rest[..open]);
            if !plain.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut plain)));
            }
            parts.push(Part::Field(name.to_string()));
            rest = &after[name_len + 1..];
        }
        plain.push_str(rest);
        if !plain.is_empty() {
            parts.push(Part::Text(plain));
        }
        Ok(Template { parts })
    }

    /// Fill the template from `notice`; `extra` gives the values of the caller's own names.
    pub fn render(&self, notice: &Notice, escape: Escape, extra: &[(&str, &str)]) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Field(f) => {
                    let v = (extra.iter().find(|(k, _)| k == f))
                        .map(|(_, v)| v.to_string())
                        .or_else(|| notice.field(f))
                        .unwrap_or_default();
                    match escape {
                        Escape::None => out.push_str(&v),
                        Escape::Json => {
                            let quoted = serde_json::Value::String(v).to_string();
                            out.push_str(&quoted[1..quoted.len() - 1]);
                        }
                    }
                }
            }
        }
        out
    }

    /// Whether the template uses any field (a constant argument does not).
    pub fn uses_fields(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Field(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::NoticeEvent;

    fn notice() -> Notice {
        Notice {
            event: NoticeEvent::Ban,
            jail: "sshd".into(),
            address: "192.0.2.7".into(),
            prefix: false,
            failures: 5,
            bantime: 600,
            bancount: 2,
            end_us: 0,
            host: "gate".into(),
            time_us: 0,
            origin: "local".into(),
            lines: vec!["Failed \"root\" \\ from 192.0.2.7".into(), "second".into()],
        }
    }

    #[test]
    fn fields_are_filled_and_other_braces_kept() {
        let t =
            Template::parse(r#"{"text": "{jail}: {address} ({failures}x) {x-y} {"#, &[]).unwrap();
        assert_eq!(
            t.render(&notice(), Escape::None, &[]),
            r#"{"text": "sshd: 192.0.2.7 (5x) {x-y} {"#
        );
        let t = Template::parse("{count} bans", &["count"]).unwrap();
        assert_eq!(
            t.render(&notice(), Escape::None, &[("count", "3")]),
            "3 bans"
        );
        assert!(!Template::parse("/bin/true", &[]).unwrap().uses_fields());
    }

    #[test]
    fn json_escaping_keeps_hostile_lines_inside_their_string() {
        let t = Template::parse(r#"{"lines": "{lines}"}"#, &[]).unwrap();
        let body = t.render(&notice(), Escape::Json, &[]);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["lines"], notice().lines.join("\n"));
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let e = Template::parse("banned {adress}", &[]).unwrap_err();
        assert!(e.starts_with("unknown field {adress}"), "{e}");
        assert!(e.contains("{address}"), "{e}");
    }
}
