//! fail2ban's regex tags (`failregex.py` `_resolveHostTag`) in f2b's terms, and `prefregex`
//! combined with each `failregex`.
//!
//! fail2ban matches `prefregex` first and then each `failregex` against the text of its
//! `<F-CONTENT>` group; f2b has one regex per failure, so each failregex is embedded where
//! the content group was (a failregex that is not anchored with `^`/`$` may match anywhere in
//! the content, so it is padded with `.*?` / `.*`).

use std::sync::LazyLock;

use regex::Regex;

use super::pyregex::{anchors, top_level_alternatives, Problem};

static TAG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"</?[\w\-]+/?>").expect("static regex"));

/// What the tags of one regex said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagInfo {
    /// It has `<HOST>` (or `<ADDR>`, `<IP4>`, `<IP6>`, `<SUBNET>`).
    pub has_host: bool,
    /// `<F-NOFAIL>` at the top level: a match is no failure.
    pub nofail: bool,
    /// `<F-NOFAIL>` inside a group: a match is a failure or not depending on the branch.
    pub nofail_nested: bool,
    /// `<F-MLFID>…</F-MLFID>`: its contents.
    pub mlfid: Option<String>,
    /// `<F-MLFFORGET>` / `<F-MLFGAINED>` session markers.
    pub session_markers: bool,
    /// `<CIDR>` / `<SUBNET>`: a prefix length in the log line.
    pub cidr: bool,
}

fn problem(tag: &str, reason: &str) -> Problem {
    Problem {
        snippet: tag.to_string(),
        reason: reason.to_string(),
    }
}

/// Group nesting depth at byte `at` of `re` (escapes and classes skipped).
fn depth_at(re: &str, at: usize) -> usize {
    groups(re)
        .iter()
        .filter(|&&(o, c)| o < at && at < c)
        .count()
}

/// Replace fail2ban's tags by f2b's (`<HOST>` `<ADDR>` `<IP4>` `<IP6>` stay; `<F-USER>` →
/// `(?P<user>`, `<F-ID/>` → `(?P<fid>\S+)`, …). `names` are the group names already used
/// by the regex this one is combined with; a repeated name becomes a plain group.
pub fn resolve(re: &str, names: &mut Vec<String>) -> Result<(String, TagInfo), Problem> {
    let mut info = TagInfo::default();
    let mut out = String::with_capacity(re.len() + 32);
    let mut open: Vec<String> = Vec::new();
    let mut last = 0;
    let mut mlfid_start: Option<usize> = None;
    let name_group = |name: &str, names: &mut Vec<String>| -> String {
        if names.iter().any(|n| n == name) {
            "(?:".to_string()
        } else {
            names.push(name.to_string());
            format!("(?P<{name}>")
        }
    };
    for m in TAG.find_iter(re) {
        let tag = m.as_str();
        let inner = &tag[1..tag.len() - 1];
        // `(?P<name>`: a group name, not a tag.
        if re[..m.start()].ends_with("(?P") || re[..m.start()].ends_with("(?") {
            continue;
        }
        out.push_str(&re[last..m.start()]);
        last = m.end();
        let repl: String = match inner {
            "HOST" | "ADDR" | "IP4" | "IP6" | "F-ADDR/" | "F-IP4/" | "F-IP6/" => {
                info.has_host = true;
                let t = inner.trim_start_matches("F-").trim_end_matches('/');
                format!("<{t}>")
            }
            "CIDR" | "F-CIDR/" => {
                info.cidr = true;
                "[0-9]{1,3}".into()
            }
            "SUBNET" | "F-SUBNET/" => {
                info.has_host = true;
                info.cidr = true;
                "<ADDR>(?:/[0-9]{1,3})?".into()
            }
            "DNS" | "F-DNS/" => {
                return Err(problem(
                    tag,
                    "<DNS> matches host names; f2b bans addresses and resolves no names",
                ))
            }
            "SKIPLINES" => {
                return Err(problem(
                    tag,
                    "<SKIPLINES> spans several lines; f2b matches one journal entry at a time",
                ))
            }
            "F-ID/" => name_group("fid", names) + r"\S+)",
            "F-PORT/" => name_group("fport", names) + r"\w+)",
            _ => {
                let (close, name) = match inner.strip_prefix('/') {
                    Some(n) => (true, n),
                    None => (false, inner),
                };
                let Some(custom) = name.strip_prefix("F-").filter(|n| {
                    !n.is_empty()
                        && n.chars().all(|c| {
                            c.is_ascii_uppercase() || c.is_ascii_digit() || "_-".contains(c)
                        })
                }) else {
                    // Not a tag of fail2ban's: literal text there (haproxy's `<NOSRV>`),
                    // which f2b must be told ([<], as f2b takes `<name>` for a tag).
                    out.push_str("[<]");
                    out.push_str(&tag[1..]);
                    continue;
                };
                if close {
                    match open.iter().rposition(|o| o == custom) {
                        Some(p) => {
                            open.remove(p);
                            if custom == "MLFID" {
                                let start = mlfid_start.take().unwrap_or(out.len());
                                info.mlfid = Some(out[start..].to_string());
                            }
                            ")".into()
                        }
                        None => format!("[<]{}", &tag[1..]),
                    }
                } else {
                    open.push(custom.to_string());
                    match custom {
                        "CONTENT" => {
                            return Err(problem(
                                tag,
                                "<F-CONTENT> belongs in prefregex, not in a failregex",
                            ))
                        }
                        "MLFID" => {
                            mlfid_start = Some(out.len() + 3);
                            "(?:".into()
                        }
                        "MLFFORGET" | "MLFGAINED" => {
                            info.session_markers = true;
                            "(?:".into()
                        }
                        "NOFAIL" => {
                            if depth_at(re, m.start()) == 0 {
                                info.nofail = true;
                            } else {
                                info.nofail_nested = true;
                            }
                            "(?:".into()
                        }
                        "USER" => name_group("user", names),
                        "ID" => name_group("fid", names),
                        "PORT" => name_group("fport", names),
                        other => name_group(&other.to_lowercase().replace('-', "_"), names),
                    }
                }
            }
        };
        out.push_str(&repl);
    }
    out.push_str(&re[last..]);
    Ok((out, info))
}

/// Split a translated prefregex at its content group: (before, after). The content's own
/// pattern (usually `.+`) is dropped: the failregex takes its place.
pub fn split_prefregex(pref: &str) -> Result<(String, String), Problem> {
    let (Some(a), Some(b)) = (pref.find("<F-CONTENT>"), pref.find("</F-CONTENT>")) else {
        return Err(problem(
            pref,
            "prefregex without <F-CONTENT>…</F-CONTENT> (a second condition on the whole line) cannot be combined into one regex",
        ));
    };
    if b < a {
        return Err(problem(pref, "prefregex: </F-CONTENT> before <F-CONTENT>"));
    }
    Ok((
        pref[..a].to_string(),
        pref[b + "</F-CONTENT>".len()..].to_string(),
    ))
}

/// Leading inline-flag groups such as `(?i)` (they stay in front).
fn flag_prefix(alt: &str) -> usize {
    let mut n = 0;
    while let Some(rest) = alt[n..].strip_prefix("(?") {
        let Some(close) = rest.find(')') else { break };
        if close > 0 && rest[..close].chars().all(|c| "imsx-".contains(c)) {
            n += 2 + close + 1;
        } else {
            break;
        }
    }
    n
}

/// Embed a failregex (Rust syntax) between a prefregex's `before` and `after` parts.
pub fn combine(before: &str, after: &str, re: &str) -> Result<String, Problem> {
    let content_at_start = matches!(before, "" | "^");
    let content_at_end = matches!(after, "" | "$");
    let mut alts = Vec::new();
    for alt in top_level_alternatives(re) {
        let flags = flag_prefix(alt);
        let (head, mut body) = alt.split_at(flags);
        let start = body.starts_with('^');
        if start {
            body = &body[1..];
        }
        let end = anchors(body)
            .last()
            .is_some_and(|&(i, c)| c == '$' && i + 1 == body.len());
        if end {
            body = &body[..body.len() - 1];
        }
        for (_, c) in anchors(body) {
            let fine = if c == '^' {
                content_at_start
            } else {
                content_at_end
            };
            if !fine {
                return Err(problem(
                    alt,
                    "an anchor inside the failregex marks where prefregex's content starts or ends, which one regex cannot say",
                ));
            }
        }
        let lead = if start { "" } else { ".*?" };
        let tail = if end || after.is_empty() { "" } else { ".*" };
        alts.push(format!("{head}{lead}{body}{tail}"));
    }
    Ok(format!("{before}(?:{}){after}", alts.join("|")))
}

const HOST_TAGS: &[&str] = &["<HOST>", "<ADDR>", "<IP4>", "<IP6>"];

fn host_positions(re: &str) -> Vec<usize> {
    let mut v: Vec<usize> = HOST_TAGS
        .iter()
        .flat_map(|t| re.match_indices(t).map(|(i, _)| i))
        .collect();
    v.sort_unstable();
    v
}

/// Groups of a Rust-syntax regex: (byte offset of `(`, of its `)`).
fn groups(re: &str) -> Vec<(usize, usize)> {
    let mut open = Vec::new();
    let mut out = Vec::new();
    let mut esc = false;
    let mut class = false;
    for (i, ch) in re.char_indices() {
        match (esc, class, ch) {
            (true, _, _) => esc = false,
            (false, _, '\\') => esc = true,
            (false, true, ']') => class = false,
            (false, true, _) => {}
            (false, false, '[') => class = true,
            (false, false, '(') => open.push(i),
            (false, false, ')') => {
                if let Some(o) = open.pop() {
                    out.push((o, i));
                }
            }
            _ => {}
        }
    }
    out
}

/// fail2ban writes `(?:IPv6:<IP6>|<IP4>)`: one address in either of two groups. f2b has one
/// address group per pattern, so such a pattern becomes one pattern per alternative.
pub fn split_host_alternatives(re: &str) -> Vec<String> {
    let hosts = host_positions(re);
    if hosts.len() < 2 {
        return vec![re.to_string()];
    }
    // The innermost group holding every address, with at most one per alternative.
    let mut best: Option<(usize, usize, usize)> = None;
    for (o, c) in groups(re) {
        if !hosts.iter().all(|&h| h > o && h < c) {
            continue;
        }
        // Skip the group's `(?:`, `(?P<name>` … head.
        let body_start = match re[o..].strip_prefix("(?") {
            Some(r) => o + 2 + r.find([':', '>']).map_or(0, |p| p + 1),
            None => o + 1,
        };
        let alts = top_level_alternatives(&re[body_start..c]);
        let ok = alts.iter().all(|a| host_positions(a).len() <= 1);
        if alts.len() > 1 && ok && best.is_none_or(|(bo, _, _)| o > bo) {
            best = Some((o, body_start, c));
        }
    }
    let Some((_, body_start, close)) = best else {
        return vec![re.to_string()];
    };
    top_level_alternatives(&re[body_start..close])
        .into_iter()
        .flat_map(|alt| {
            split_host_alternatives(&format!("{}{alt}{}", &re[..body_start], &re[close..]))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_per_pattern() {
        assert_eq!(
            split_host_alternatives(r"^a \[(?:IPv6:<IP6>|<IP4>)\] b$"),
            vec![r"^a \[(?:IPv6:<IP6>)\] b$", r"^a \[(?:<IP4>)\] b$"]
        );
        assert_eq!(split_host_alternatives("^<HOST> x$"), vec!["^<HOST> x$"]);
        assert_eq!(
            split_host_alternatives("^<HOST> and <HOST>$"),
            vec!["^<HOST> and <HOST>$"]
        );
    }

    #[test]
    fn fail2ban_tags_become_f2b_groups() {
        let mut names = Vec::new();
        let (t, i) = resolve(
            r"^<F-NOFAIL>x</F-NOFAIL> for <F-USER>\S+</F-USER> id <F-ID/> from <HOST>(?P<a>y)",
            &mut names,
        )
        .unwrap();
        assert_eq!(
            t,
            r"^(?:x) for (?P<user>\S+) id (?P<fid>\S+) from <HOST>(?P<a>y)"
        );
        assert!(i.has_host && i.nofail && !i.nofail_nested);
        let (t, i) = resolve(
            r"(?:<F-NOFAIL>a</F-NOFAIL>|b) <F-USER>u</F-USER>",
            &mut names,
        )
        .unwrap();
        assert_eq!(t, "(?:(?:a)|b) (?:u)");
        assert!(i.nofail_nested && !i.nofail);
        let (t, i) = resolve(
            "^<F-MLFID></F-MLFID>a <F-CUSTOM-X>b</F-CUSTOM-X> </F-Y>",
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(t, "^(?:)a (?P<custom_x>b) [<]/F-Y>");
        assert_eq!(i.mlfid.as_deref(), Some(""));
        assert!(resolve("<DNS>", &mut Vec::new()).is_err());
    }

    #[test]
    fn prefregex_and_failregex_become_one() {
        let (b, a) = split_prefregex(r"^(?:error: )?<F-CONTENT>.+</F-CONTENT>$").unwrap();
        assert_eq!((b.as_str(), a.as_str()), ("^(?:error: )?", "$"));
        assert_eq!(
            combine(&b, &a, "^Invalid user x from <HOST>$|bad <HOST>").unwrap(),
            "^(?:error: )?(?:Invalid user x from <HOST>|.*?bad <HOST>.*)$"
        );
        assert_eq!(
            combine(&b, &a, "(?i)^fail <HOST>").unwrap(),
            "^(?:error: )?(?:(?i)fail <HOST>.*)$"
        );
        assert!(combine(&b, &a, "a(?:^|b)").is_err());
        assert_eq!(
            combine("^", "$", "a(?:^|b)").unwrap(),
            "^(?:.*?a(?:^|b).*)$"
        );
    }
}
