//! Tag expansion in filter patterns: `<HOST>`, `<ADDR>`, `<IP4>`, `<IP6>`,
//! `<F-USER>…</F-USER>`, `<F-ID>…</F-ID>` and `<var>` (from the filter's `[vars]`).

use std::collections::BTreeMap;

use super::host;

/// Names of the form `[A-Za-z0-9_-]{1,64}` (vars, modes).
pub(super) fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Make the regex crate's error say what a filter author needs to know.
pub(super) fn explain_regex_error(e: &regex::Error) -> String {
    let s = e.to_string();
    if s.contains("look-around") || s.contains("backreference") {
        format!(
            "this needs a backtracking regex engine (look-around or backreference), which f2b \
             refuses so that no log line can make matching slow; rewrite it with plain \
             alternatives and anchors.\n{s}"
        )
    } else if let regex::Error::CompiledTooBig(limit) = e {
        format!("the compiled regex exceeds the size limit of {limit} bytes; simplify it")
    } else {
        s
    }
}

/// Expand the tags of `pattern`. An unknown `<name>` is an error (a typo would otherwise
/// silently become literal text that never matches).
pub(super) fn expand(pattern: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(pattern.len() + 256);
    let mut rest = pattern;
    let mut hosts = 0;
    while let Some(i) = rest.find('<') {
        let (before, tail) = rest.split_at(i);
        out.push_str(before);
        // `(?P<name>` and `(?<name>` are group syntax, never tags.
        // Only right after `(`: `)?<HOST>` (an optional group before a tag) is a tag.
        let is_group = before.ends_with("(?P") || before.ends_with("(?");
        let end = tail.find('>');
        let tag = end.map(|e| &tail[1..e]);
        match (is_group, tag) {
            (false, Some("HOST" | "ADDR")) => {
                hosts += 1;
                out.push_str(&host::host_group());
            }
            (false, Some("IP4")) => {
                hosts += 1;
                out.push_str(&format!("(?P<host>{})", host::ipv4_pattern()));
            }
            (false, Some("IP6")) => {
                hosts += 1;
                out.push_str(&format!(
                    r"(?P<host>{v6}|\[{v6}\])",
                    v6 = host::ipv6_pattern()
                ));
            }
            (false, Some("F-USER")) => out.push_str("(?P<user>"),
            (false, Some("F-ID")) => out.push_str("(?P<sid>"),
            (false, Some("/F-USER" | "/F-ID")) => out.push(')'),
            (false, Some(name)) if vars.contains_key(name) => {
                let v = &vars[name];
                if v.contains("<HOST>") || v.contains("<ADDR>") {
                    hosts += 1;
                }
                // Vars may use the address tags but not other vars (no recursion).
                out.push_str(
                    &expand(v, &BTreeMap::new()).map_err(|e| format!("in <{name}>: {e}"))?,
                );
            }
            (false, Some(name)) if is_ident(name) && name != "__" => {
                let known = if vars.is_empty() {
                    "the filter has no [vars]".to_string()
                } else {
                    format!(
                        "[vars] has {}",
                        vars.keys()
                            .map(|k| format!("<{k}>"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                return Err(format!(
                    "unknown tag <{name}> (tags: <HOST>, <ADDR>, <IP4>, <IP6>, <F-USER>, <F-ID>; \
                     {known}); write [<] for a literal '<'"
                ));
            }
            _ => {
                out.push('<');
                rest = &tail[1..];
                continue;
            }
        }
        rest = &tail[end.unwrap_or(0) + 1..];
    }
    out.push_str(rest);
    if hosts > 1 {
        return Err("more than one <HOST> in one pattern: the address would be ambiguous".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_tag_is_an_error_not_literal_text() {
        let e = expand("^failed from <HSOT>$", &BTreeMap::new()).unwrap_err();
        assert!(e.contains("unknown tag <HSOT>"), "{e}");
        // Literal angle brackets around non-names stay literal.
        assert!(expand(r"^user=<[^>]*>, rip=<HOST>$", &BTreeMap::new()).is_ok());
        assert!(expand(r"^from=<> rip=<HOST>$", &BTreeMap::new()).is_ok());
        assert!(expand(r"^x [<]root> <HOST>$", &BTreeMap::new()).is_ok());
    }

    #[test]
    fn session_id_tag() {
        let s = expand("^conn=<F-ID>[0-9]+</F-ID> <HOST>$", &BTreeMap::new()).unwrap();
        assert!(s.contains("(?P<sid>[0-9]+)"), "{s}");
    }
}
