//! Validation of one `[action.NAME]` by its type: required keys, keys of other types, URLs,
//! templates, mail addresses, secret files (read here; their contents never reach a message).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use super::actions::{
    parse_header_lines, ActionConfig, ActionKind, MailTls, MergedAction, Secret, ABUSEIPDB_URL,
    DEFAULT_TIMEOUT, MAIL_BODY, TYPES,
};
use super::duration::from_raw as dur;
use super::error::Problems;
use super::raw::{RawDur, Val};
use crate::location::Location;
use crate::outbox::{NoticeEvent, Template};

/// Validate every merged action.
pub(super) fn resolve(
    merged: &BTreeMap<String, (MergedAction, Location)>,
    problems: &mut Problems,
) -> BTreeMap<String, ActionConfig> {
    let mut out = BTreeMap::new();
    for (name, (m, decl)) in merged {
        let mut r = Resolver {
            name,
            problems: &mut *problems,
            ok: true,
        };
        if let Some(a) = r.action(m, decl) {
            if r.ok {
                out.insert(name.clone(), a);
            }
        }
    }
    out
}

struct Resolver<'a> {
    name: &'a str,
    problems: &'a mut Problems,
    ok: bool,
}

impl Resolver<'_> {
    fn bad(&mut self, loc: &Location, key: &str, msg: impl fmt::Display) {
        self.ok = false;
        (self.problems).invalid(loc.clone(), format!("action {}: {key}: {msg}", self.name));
    }

    /// A required key.
    fn need<'v, T>(
        &mut self,
        v: &'v Option<Val<T>>,
        key: &str,
        decl: &Location,
    ) -> Option<&'v Val<T>> {
        if v.is_none() {
            self.ok = false;
            (self.problems).invalid(
                decl.clone(),
                format!("[action.{}]: {key} is required for this type", self.name),
            );
        }
        v.as_ref()
    }

    fn template(&mut self, v: &Val<String>, key: &str, extra: &[&str]) -> Option<Template> {
        Template::parse(&v.v, extra)
            .map_err(|e| self.bad(&v.loc, key, e))
            .ok()
    }

    fn secret(&mut self, v: &Val<String>, key: &str) -> Option<Secret> {
        let path = Path::new(&v.v);
        let path = if path.is_relative() {
            Path::new(&v.loc.file)
                .parent()
                .unwrap_or(Path::new("."))
                .join(path)
        } else {
            path.to_path_buf()
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Some(Secret::new(
                path,
                text.trim_end_matches(['\n', '\r']).to_string(),
            )),
            Err(e) => {
                self.bad(&v.loc, key, format!("cannot read {}: {e}", path.display()));
                None
            }
        }
    }

    fn duration(&mut self, v: &Val<RawDur>, key: &str) -> Option<Duration> {
        match dur(&v.v, false) {
            Ok(b) => b.as_duration(),
            Err(e) => {
                self.bad(&v.loc, key, e);
                None
            }
        }
    }

    fn action(&mut self, m: &MergedAction, decl: &Location) -> Option<ActionConfig> {
        let ty = self.need(&m.kind, "type", decl)?;
        let Some((ty_name, allowed)) = TYPES.iter().find(|(t, _)| *t == ty.v) else {
            let names: Vec<&str> = TYPES.iter().map(|(t, _)| *t).collect();
            self.bad(
                &ty.loc,
                "type",
                format!(
                    "unknown type {:?}; the types are {}",
                    ty.v,
                    names.join(", ")
                ),
            );
            return None;
        };
        for (key, loc) in m.set_keys() {
            if !["kind", "events", "timeout"].contains(&key) && !allowed.contains(&key) {
                self.bad(&loc, key, format!("does not apply to a {ty_name} action"));
            }
        }
        let events = self.events(m, ty_name);
        let timeout = match &m.timeout {
            Some(v) => self.duration(v, "timeout").unwrap_or(DEFAULT_TIMEOUT),
            None => DEFAULT_TIMEOUT,
        };
        let kind = match *ty_name {
            "webhook" => self.webhook(m, decl)?,
            "command" => self.command(m, decl)?,
            "mail" => self.mail(m, decl)?,
            _ => self.abuseipdb(m, decl)?,
        };
        Some(ActionConfig {
            name: self.name.to_string(),
            kind,
            events,
            timeout,
            loc: decl.clone(),
        })
    }

    fn events(&mut self, m: &MergedAction, ty: &str) -> Vec<NoticeEvent> {
        let default = if ty == "abuseipdb" {
            vec![NoticeEvent::Ban]
        } else {
            vec![NoticeEvent::Ban, NoticeEvent::Unban]
        };
        let Some(v) = &m.events else { return default };
        let mut out = Vec::new();
        for e in &v.v {
            match e.as_str() {
                "ban" => out.push(NoticeEvent::Ban),
                "unban" if ty != "abuseipdb" => out.push(NoticeEvent::Unban),
                "unban" => self.bad(&v.loc, "events", "AbuseIPDB takes reports of bans only"),
                other => self.bad(
                    &v.loc,
                    "events",
                    format!("unknown event {other:?}; the events are \"ban\" and \"unban\""),
                ),
            }
        }
        out.dedup();
        out
    }

    fn url(&mut self, v: &Val<String>) -> Option<String> {
        match reqwest::Url::parse(&v.v) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Some(v.v.clone()),
            Ok(u) => {
                self.bad(
                    &v.loc,
                    "url",
                    format!("scheme {:?}: only http and https", u.scheme()),
                );
                None
            }
            Err(e) => {
                self.bad(&v.loc, "url", format!("{:?} is not a URL: {e}", v.v));
                None
            }
        }
    }

    fn webhook(&mut self, m: &MergedAction, decl: &Location) -> Option<ActionKind> {
        let url = self.need(&m.url, "url", decl).and_then(|v| self.url(v));
        let method = match &m.method {
            Some(v) => match v.v.to_ascii_uppercase().as_str() {
                me @ ("POST" | "PUT" | "PATCH" | "GET") => me.to_string(),
                _ => {
                    self.bad(&v.loc, "method", "expected POST, PUT, PATCH or GET");
                    "POST".into()
                }
            },
            None => "POST".into(),
        };
        let mut headers = Vec::new();
        if let Some(h) = &m.headers {
            for (k, v) in &h.v {
                if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err()
                    || reqwest::header::HeaderValue::from_str(v).is_err()
                {
                    self.bad(&h.loc, "headers", format!("{k:?} is not a valid header"));
                }
                headers.push((k.clone(), v.clone()));
            }
        }
        let secret_headers = match &m.headers_file {
            Some(v) => {
                let s = self.secret(v, "headers_file")?;
                if let Err(line) = parse_header_lines(s.expose()) {
                    self.bad(
                        &v.loc,
                        "headers_file",
                        format!("{}: line {line} is not \"Name: value\"", s.path.display()),
                    );
                }
                Some(s)
            }
            None => None,
        };
        let content_type = m
            .content_type
            .as_ref()
            .map_or_else(|| "application/json".to_string(), |v| v.v.clone());
        let body = m.body.as_ref().and_then(|v| self.template(v, "body", &[]));
        Some(ActionKind::Webhook {
            url: url?,
            method,
            headers,
            secret_headers,
            content_type,
            body,
        })
    }

    fn command(&mut self, m: &MergedAction, decl: &Location) -> Option<ActionKind> {
        let v = self.need(&m.command, "command", decl)?;
        match v.v.first() {
            None => self.bad(&v.loc, "command", "is empty"),
            Some(p) if !p.starts_with('/') => self.bad(
                &v.loc,
                "command",
                format!("{p:?}: the program must be an absolute path (no shell, no PATH lookup)"),
            ),
            Some(_) => {}
        }
        let argv: Vec<Template> = (v.v.iter())
            .filter_map(|a| {
                Template::parse(a, &[])
                    .map_err(|e| self.bad(&v.loc, "command", e))
                    .ok()
            })
            .collect();
        Some(ActionKind::Command { argv })
    }

    fn mail(&mut self, m: &MergedAction, decl: &Location) -> Option<ActionKind> {
        let server = self.need(&m.server, "server", decl).map(|v| v.v.clone());
        let from = self.need(&m.from, "from", decl).map(|v| v.v.clone());
        let to = self.need(&m.to, "to", decl).map(|v| v.v.clone());
        let from_loc = m.from.as_ref().map(|v| v.loc.clone());
        let to_loc = m.to.as_ref().map(|v| v.loc.clone());
        let addrs = (from.iter().map(|a| ("from", a, &from_loc)))
            .chain(to.iter().flatten().map(|a| ("to", a, &to_loc)));
        for (key, a, loc) in addrs {
            if a.parse::<lettre::message::Mailbox>().is_err() {
                let loc = loc.clone().unwrap_or_else(|| decl.clone());
                self.bad(&loc, key, format!("{a:?} is not a mail address"));
            }
        }
        if to.as_ref().is_some_and(Vec::is_empty) {
            self.bad(decl, "to", "names no recipient");
        }
        let tls = match m.tls.as_ref().map(|v| (v.v.as_str(), &v.loc)) {
            None | Some(("starttls", _)) => MailTls::StartTls,
            Some(("tls", _)) => MailTls::Tls,
            Some(("none", _)) => MailTls::None,
            Some((other, loc)) => {
                let loc = loc.clone();
                self.bad(
                    &loc,
                    "tls",
                    format!("{other:?}: expected \"starttls\", \"tls\" or \"none\""),
                );
                MailTls::StartTls
            }
        };
        let port = match &m.port {
            Some(v) => u16::try_from(v.v).ok().filter(|p| *p > 0).or_else(|| {
                self.bad(&v.loc, "port", "expected a port number 1-65535");
                None
            })?,
            None => match tls {
                MailTls::Tls => 465,
                MailTls::StartTls => 587,
                MailTls::None => 25,
            },
        };
        let credentials = match &m.credentials_file {
            Some(v) => {
                let s = self.secret(v, "credentials_file")?;
                if !s.expose().contains(':') {
                    let msg = format!("{}: expected one line user:password", s.path.display());
                    self.bad(&v.loc, "credentials_file", msg);
                }
                Some(s)
            }
            None => None,
        };
        let digest = match &m.digest {
            Some(v) => self.duration(v, "digest").unwrap_or_default(),
            None => Duration::ZERO,
        };
        let subject = match &m.subject {
            Some(v) => Some(self.template(v, "subject", &["count"])?),
            None => None,
        };
        let body = match &m.body {
            Some(v) => self.template(v, "body", &[])?,
            None => Template::parse(MAIL_BODY, &[]).expect("default body"),
        };
        Some(ActionKind::Mail {
            server: server?,
            port,
            tls,
            from: from?,
            to: to?,
            credentials,
            digest,
            subject,
            body,
        })
    }

    fn abuseipdb(&mut self, m: &MergedAction, decl: &Location) -> Option<ActionKind> {
        let key = self.need(&m.key_file, "key_file", decl)?;
        let key = self.secret(key, "key_file")?;
        let url = match &m.url {
            Some(v) => self.url(v)?,
            None => ABUSEIPDB_URL.to_string(),
        };
        let mut categories = BTreeMap::new();
        if let Some(v) = &m.categories {
            for (jail, list) in &v.v {
                let mut cats = Vec::new();
                for c in list {
                    match u8::try_from(*c) {
                        Ok(c) if (1..=30).contains(&c) => cats.push(c),
                        _ => self.bad(
                            &v.loc,
                            "categories",
                            format!("{jail}: {c} is not an AbuseIPDB category (1-30)"),
                        ),
                    }
                }
                if cats.is_empty() {
                    self.bad(&v.loc, "categories", format!("{jail}: no category"));
                }
                categories.insert(jail.clone(), cats);
            }
        }
        Some(ActionKind::AbuseIpdb {
            key,
            categories,
            url,
        })
    }
}
