//! Values as fail2ban sees them: Python `configparser` interpolation (`%(name)s`, `%%`, with
//! fail2ban's `%(section/name)s`, `%(default/name)s`, `%(known/name)s` and `%(__name__)s`),
//! fail2ban's recursive `<tag>` substitution (`substituteRecursiveTags`), and its option
//! syntax `name[key=value, key="value"]` (`extractOptions`, `splitWithOptions`).

use std::collections::{BTreeMap, HashMap};

use super::ini::Value;
use super::reader::Config;
use crate::location::Location;

/// Values given from outside a section (a jail's options when reading its filter): they win
/// over the section and `[DEFAULT]`.
pub type Vars = BTreeMap<String, Value>;

/// Python's `MAX_INTERPOLATION_DEPTH`.
const MAX_DEPTH: usize = 10;
/// fail2ban's `MAX_TAG_REPLACE_COUNT`.
const MAX_TAG_REPLACE: usize = 25;

/// An interpolation that fails (fail2ban would skip the jail).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{loc}: {msg}")]
pub struct InterpError {
    pub loc: Location,
    pub msg: String,
}

impl Config {
    /// `ConfigParser.get(section, option, vars=vars)`: the interpolated value, or `None` when
    /// neither `vars`, the section nor `[DEFAULT]` has it (or the section does not exist).
    pub fn get(
        &self,
        section: &str,
        option: &str,
        vars: &Vars,
    ) -> Result<Option<Value>, InterpError> {
        if section != "DEFAULT" && !self.sections.contains_key(section) {
            return Ok(None);
        }
        let option = option.to_lowercase();
        let Some(raw) = vars
            .get(&option)
            .or_else(|| self.sections.get(section).and_then(|s| s.get(&option)))
            .or_else(|| self.defaults.get(&option))
        else {
            return Ok(None);
        };
        let mut out = String::new();
        self.interpolate(section, &raw.text, vars, &raw.loc, 0, &mut out)?;
        Ok(Some(Value::new(out, raw.loc.clone())))
    }

    /// `get_ex`: like [`get`](Self::get), but `sec/opt` names another section's option
    /// (`known/opt`: the value a later file replaced, else the section's own; `default/opt`).
    pub fn get_ex(
        &self,
        section: &str,
        option: &str,
        vars: &Vars,
    ) -> Result<Option<Value>, InterpError> {
        if let Some((sec, opt)) = option.split_once('/') {
            let valid = !sec.is_empty()
                && sec
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
                && !opt.is_empty()
                && !opt.contains(char::is_whitespace)
                && !opt.contains('>');
            if valid {
                let order: Vec<String> = match sec.to_lowercase().as_str() {
                    "known" => vec![format!("KNOWN/{section}"), section.to_string()],
                    "default" => vec!["DEFAULT".into()],
                    _ => vec![sec.to_string()],
                };
                for s in order {
                    if let Some(v) = self.get(&s, opt, &Vars::new())? {
                        return Ok(Some(v));
                    }
                }
            }
        }
        self.get(section, option, vars)
    }

    /// The value of `%(sec/opt)s` seen from `section`, raw.
    fn section_ref(&self, section: &str, name: &str) -> Option<&Value> {
        let (sec, opt) = name.split_once('/')?;
        let from_default = || self.defaults.get(opt);
        match sec.to_lowercase().as_str() {
            "default" => from_default(),
            "known" => self
                .sections
                .get(&format!("KNOWN/{section}"))
                .and_then(|s| s.get(opt))
                .or_else(from_default),
            _ => self
                .sections
                .get(sec)
                .map(|s| s.get(opt).or_else(from_default))?,
        }
    }

    fn interpolate(
        &self,
        section: &str,
        text: &str,
        vars: &Vars,
        loc: &Location,
        depth: usize,
        out: &mut String,
    ) -> Result<(), InterpError> {
        let err = |msg: String| InterpError {
            loc: loc.clone(),
            msg,
        };
        if depth > MAX_DEPTH {
            return Err(err(format!(
                "interpolation nests deeper than {MAX_DEPTH} levels (a value refers to itself?)"
            )));
        }
        let mut rest = text;
        while let Some(p) = rest.find('%') {
            out.push_str(&rest[..p]);
            rest = &rest[p..];
            if let Some(r) = rest.strip_prefix("%%") {
                out.push('%');
                rest = r;
                continue;
            }
            let Some(r) = rest.strip_prefix("%(") else {
                return Err(err(format!(
                    "'%' must be followed by '%' or '(' in {:?}",
                    clip(rest)
                )));
            };
            let Some(end) = r.find(")s") else {
                return Err(err(format!("bad interpolation reference {:?}", clip(rest))));
            };
            let name = r[..end].to_lowercase();
            if name.contains(')') || name.is_empty() {
                return Err(err(format!("bad interpolation reference {:?}", clip(rest))));
            }
            rest = &r[end + 2..];
            if name == "__name__" {
                out.push_str(section);
                continue;
            }
            let raw = vars
                .get(&name)
                .or_else(|| self.sections.get(section).and_then(|s| s.get(&name)))
                .or_else(|| self.defaults.get(&name))
                .or_else(|| self.section_ref(section, &name));
            let Some(raw) = raw else {
                return Err(err(format!(
                    "%({name})s: no option {name:?} in [{section}] or [DEFAULT]"
                )));
            };
            self.interpolate(section, &raw.text, vars, loc, depth + 1, out)?;
        }
        out.push_str(rest);
        Ok(())
    }
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// `substituteRecursiveTags`: replace `<tag>` in every value by the value named `tag` (or what
/// `lookup` finds for it), repeatedly, until nothing changes. Unknown tags stay as they are
/// (`<HOST>` and friends are the regex engine's business).
pub fn substitute_tags(
    input: &BTreeMap<String, Value>,
    ignore: &[String],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, Value>, InterpError> {
    let mut tags = input.clone();
    let mut done: Vec<String> = Vec::new();
    let mut rep_counts: HashMap<String, HashMap<String, usize>> = HashMap::new();
    let keys: Vec<String> = tags.keys().cloned().collect();
    loop {
        let mut again = false;
        for tag in &keys {
            if ignore.contains(tag) || done.contains(tag) {
                continue;
            }
            let orig = tags[tag].text.clone();
            let mut value = orig.clone();
            let mut counts = rep_counts.get(tag).cloned().unwrap_or_default();
            let mut from = 0;
            while let Some((start, end, name)) = find_tag(&value, from) {
                if ignore.iter().any(|i| i == name) {
                    from = end;
                    continue;
                }
                let name = name.to_string();
                if name == *tag || counts.get(&name).copied().unwrap_or(1) > MAX_TAG_REPLACE {
                    return Err(InterpError {
                        loc: tags[tag].loc.clone(),
                        msg: format!(
                            "{tag}: the tag <{name}> refers to itself and cannot be resolved"
                        ),
                    });
                }
                let repl = tags
                    .get(&name)
                    .map(|v| v.text.clone())
                    .or_else(|| lookup(&name));
                let Some(repl) = repl else {
                    from = end;
                    continue;
                };
                value = value.replace(&format!("<{name}>"), &repl);
                *counts.entry(name).or_insert(0) += 1;
                from = start;
            }
            if value != orig {
                if find_tag(&value, 0).is_some() {
                    rep_counts.insert(tag.clone(), counts);
                    again = true;
                }
                tags.get_mut(tag).expect("known key").text = value.clone();
            }
            if !value.contains('<') {
                done.push(tag.clone());
            }
        }
        if !again {
            break;
        }
    }
    Ok(tags)
}

/// The next `<name>` (no blanks, `<` or `>` inside) at or after byte `from`.
fn find_tag(s: &str, from: usize) -> Option<(usize, usize, &str)> {
    let mut i = from;
    while let Some(p) = s[i..].find('<') {
        let start = i + p;
        let rest = &s[start + 1..];
        let stop = rest.find(['<', '>', ' ']);
        match stop {
            Some(e) if e > 0 && rest.as_bytes()[e] == b'>' => {
                return Some((start, start + e + 2, &rest[..e]))
            }
            _ => i = start + 1,
        }
    }
    None
}

/// `extractOptions`: `name[k=v, k2="v 2"][k3='x']` → ("name", {k: v, …}).
pub fn extract_options(spec: &str) -> Result<(String, BTreeMap<String, String>), String> {
    let spec = spec.trim();
    let (name, mut rest) = match spec.find('[') {
        Some(i) => (spec[..i].trim(), spec[i..].trim()),
        None => (spec, ""),
    };
    if name.is_empty() {
        return Err(format!("{spec:?} has no name"));
    }
    let mut opts = BTreeMap::new();
    while let Some(r) = rest.strip_prefix('[') {
        let mut r = r;
        loop {
            r = r.trim_start_matches([' ', '\t', '\n', ',']);
            if let Some(after) = r.strip_prefix(']') {
                r = after.trim_start();
                break;
            }
            let eq = r
                .find('=')
                .ok_or_else(|| format!("expected key=value in {spec:?} at {:?}", clip(r)))?;
            let key = r[..eq].trim();
            if key.is_empty()
                || !key
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                return Err(format!("bad option name {key:?} in {spec:?}"));
            }
            r = &r[eq + 1..];
            let (value, after) = match r.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let end = r[1..]
                        .find(q)
                        .ok_or_else(|| format!("unterminated {q} in {spec:?}"))?;
                    (&r[1..1 + end], &r[end + 2..])
                }
                _ => {
                    let end = r.find([',', ']']).unwrap_or(r.len());
                    (&r[..end], &r[end..])
                }
            };
            opts.insert(key.to_string(), value.trim().to_string());
            r = after;
            if r.is_empty() {
                break;
            }
            if !r.starts_with([',', ']', ' ', '\t', '\n']) {
                return Err(format!("unexpected {:?} in {spec:?}", clip(r)));
            }
        }
        rest = r;
    }
    if !rest.is_empty() {
        return Err(format!(
            "unexpected {:?} after the options of {spec:?}",
            clip(rest)
        ));
    }
    Ok((name.to_string(), opts))
}

/// `splitWithOptions`: a list of `name[options]` items separated by blanks or newlines
/// (blanks inside `[…]` and quotes do not split).
pub fn split_with_options(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') if depth > 0 => {
                quote = Some(c);
                cur.push(c);
            }
            (None, '[') => {
                depth += 1;
                cur.push(c);
            }
            (None, ']') => {
                depth = depth.saturating_sub(1);
                cur.push(c);
            }
            (None, c) if c.is_whitespace() && depth == 0 => {
                // `name [opts]` with blanks before the bracket stays one item.
                while chars.peek().is_some_and(|n| n.is_whitespace()) {
                    chars.next();
                }
                if chars.peek() == Some(&'[') && !cur.is_empty() && !cur.ends_with(']') {
                    continue;
                }
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::ini::IniFile;
    use super::*;

    fn cfg(text: &str) -> Config {
        let mut c = Config::default();
        c.merge(&IniFile::parse("t.conf", text).unwrap());
        c
    }

    fn val(c: &Config, s: &str, o: &str) -> String {
        c.get(s, o, &Vars::new()).unwrap().unwrap().text
    }

    #[test]
    fn python_interpolation_and_fail2ban_extensions() {
        let mut c = cfg(
            "[DEFAULT]\nmode = normal\nfilter = %(__name__)s[mode=%(mode)s]\n\
             action_ = ban[port=\"%(port)s\"]\nport = 0:65535\npct = 100%%\n\
             [postfix]\nmode = more\nport = smtp\n[nsd]\naction = %(default/action_)s[x=1]\n\
             [other]\nv = %(postfix/port)s\n[bad]\nv = %(nope)s\n",
        );
        assert_eq!(val(&c, "postfix", "filter"), "postfix[mode=more]");
        assert_eq!(val(&c, "nsd", "action"), "ban[port=\"0:65535\"][x=1]");
        assert_eq!(val(&c, "other", "v"), "smtp");
        assert_eq!(val(&c, "other", "pct"), "100%");
        let e = c.get("bad", "v", &Vars::new()).unwrap_err();
        assert_eq!(e.loc.to_string(), "t.conf:15");
        c.merge(&IniFile::parse("t.local", "[postfix]\nport = %(known/port)s,465\n").unwrap());
        assert_eq!(val(&c, "postfix", "port"), "smtp,465");
        let mut vars = Vars::new();
        vars.insert(
            "mode".into(),
            Value::new("aggressive", Location::new("x", 1)),
        );
        let v = c.get("postfix", "filter", &vars).unwrap().unwrap();
        assert_eq!(v.text, "postfix[mode=aggressive]");
        assert!(c.get("nosuch", "mode", &Vars::new()).unwrap().is_none());
    }

    #[test]
    fn tags_resolve_recursively() {
        let loc = Location::new("f", 1);
        let mut m = BTreeMap::new();
        for (k, v) in [
            ("failregex", "^<mdre-<mode>> <HOST>$"),
            ("mode", "normal"),
            ("mdre-normal", "a|<extra>"),
        ] {
            m.insert(k.to_string(), Value::new(v, loc.clone()));
        }
        let out = substitute_tags(&m, &[], &|t| (t == "extra").then(|| "b".into())).unwrap();
        assert_eq!(out["failregex"].text, "^a|b <HOST>$");
        m.insert("self".into(), Value::new("<self>", loc));
        assert!(substitute_tags(&m, &[], &|_| None).is_err());
    }

    #[test]
    fn option_syntax() {
        let (n, o) = extract_options("sshd[mode=aggressive]").unwrap();
        assert_eq!((n.as_str(), o["mode"].as_str()), ("sshd", "aggressive"));
        let (n, o) =
            extract_options(r#"iptables[name=x, port="http,https", protocol='tcp'][a=1]"#).unwrap();
        assert_eq!(n, "iptables");
        assert_eq!(o["port"], "http,https");
        assert_eq!(o["protocol"], "tcp");
        assert_eq!(o["a"], "1");
        assert!(extract_options("x[=1]").is_err());
        let items = split_with_options(
            "iptables-multiport[name=a, port=\"ssh, 22\"]\n   sendmail-whois[dest=\"r@x\"]  dummy",
        );
        assert_eq!(
            items,
            vec![
                "iptables-multiport[name=a, port=\"ssh, 22\"]",
                "sendmail-whois[dest=\"r@x\"]",
                "dummy"
            ]
        );
    }
}
