//! Python `re` syntax → the `regex` crate's syntax, for fail2ban's regexes.
//!
//! What both engines mean the same way passes through (`(?:…)`, `(?P<name>…)`, `\s`, `\w`,
//! `(?i)`, lazy quantifiers, classes). What differs in spelling is rewritten: `\d` → `[0-9]`
//! (ASCII, as log lines are), `\Z` → `\z`, `{,n}` → `{0,n}`, a `{` that is no quantifier →
//! `\{`, `[` `&` `~` `--` inside classes (set operators in Rust) escaped, `\<` `\>` (word
//! boundaries in Rust, literals in Python) → `<` `>`, `(?#…)` comments dropped. What a
//! linear-time engine cannot do — look-around, back-references, conditionals, atomic groups,
//! possessive quantifiers — is refused with the construct that needs it, never loosened.

/// Why a regex cannot be carried over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The construct as written (to find it in the source files).
    pub snippet: String,
    pub reason: String,
}

impl Problem {
    /// The group starting at `at`, to its closing parenthesis (or `len` characters).
    fn group(chars: &[char], at: usize, len: usize, reason: &str) -> Problem {
        let mut depth = 0usize;
        let mut esc = false;
        let mut end = None;
        for (k, &ch) in chars.iter().enumerate().skip(at) {
            match (esc, ch) {
                (true, _) => esc = false,
                (false, '\\') => esc = true,
                (false, '(') => depth += 1,
                (false, ')') => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(k + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
        Problem::new(chars, at, end.map_or(len, |e| e - at), reason)
    }

    fn new(chars: &[char], at: usize, len: usize, reason: &str) -> Problem {
        let end = (at + len).min(chars.len());
        Problem {
            snippet: chars[at..end].iter().collect(),
            reason: reason.to_string(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:?})", self.reason, self.snippet)
    }
}

const LOOKAROUND: &str =
    "look-around needs a backtracking engine; f2b's linear-time regexes cannot express it";
const BACKREF: &str =
    "a back-reference needs a backtracking engine; f2b's linear-time regexes cannot express it";

/// Translate one regex. `<TAG>`s are left as they are.
pub fn translate(src: &str) -> Result<String, Problem> {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len() + 16);
    let mut i = 0;
    // Can the previous item take a quantifier?
    let mut repeatable = false;
    while i < c.len() {
        let ch = c[i];
        match ch {
            '\\' => {
                let (s, n) = escape(&c, i, false)?;
                out.push_str(&s);
                i += n;
                repeatable = true;
            }
            '[' => {
                i = class(&c, i, &mut out)?;
                repeatable = true;
            }
            '(' => {
                let (s, n) = group_open(&c, i)?;
                out.push_str(&s);
                i += n;
                repeatable = false;
            }
            ')' => {
                out.push(')');
                i += 1;
                repeatable = true;
            }
            '*' | '+' | '?' => {
                if !repeatable {
                    return Err(Problem::new(&c, i, 2, "a quantifier with nothing to repeat"));
                }
                out.push(ch);
                i += 1;
                i = quantifier_suffix(&c, i, &mut out)?;
                repeatable = false;
            }
            '{' => match brace(&c, i) {
                Some((q, n)) if repeatable => {
                    out.push_str(&q);
                    i += n;
                    i = quantifier_suffix(&c, i, &mut out)?;
                    repeatable = false;
                }
                _ => {
                    out.push_str("\\{");
                    i += 1;
                    repeatable = true;
                }
            },
            '}' | ']' => {
                out.push('\\');
                out.push(ch);
                i += 1;
                repeatable = true;
            }
            '^' | '$' | '|' => {
                out.push(ch);
                i += 1;
                repeatable = false;
            }
            '\n' => {
                return Err(Problem::new(
                    &c,
                    i.saturating_sub(8),
                    16,
                    "a regex over several lines (maxlines > 1) cannot be carried over: f2b matches one journal entry at a time",
                ))
            }
            _ => {
                out.push(ch);
                i += 1;
                repeatable = true;
            }
        }
    }
    Ok(out)
}

/// After `*`, `+`, `?` or `{m,n}`: a lazy `?` passes, a possessive `+` is refused.
fn quantifier_suffix(c: &[char], i: usize, out: &mut String) -> Result<usize, Problem> {
    match c.get(i) {
        Some('?') => {
            out.push('?');
            Ok(i + 1)
        }
        Some('+') => Err(Problem::new(
            c,
            i.saturating_sub(1),
            2,
            "a possessive quantifier needs a backtracking engine",
        )),
        _ => Ok(i),
    }
}

/// `{m}`, `{m,}`, `{,n}`, `{m,n}` at `i` → the quantifier in Rust spelling and its length.
fn brace(c: &[char], i: usize) -> Option<(String, usize)> {
    let close = c[i..].iter().position(|&x| x == '}')? + i;
    let inner: String = c[i + 1..close].iter().collect();
    let (lo, hi) = match inner.split_once(',') {
        Some((lo, hi)) => (lo, Some(hi)),
        None => (inner.as_str(), None),
    };
    let digits = |s: &str| s.chars().all(|d| d.is_ascii_digit());
    if !digits(lo) || !hi.is_none_or(digits) || (lo.is_empty() && hi.is_none()) {
        return None;
    }
    let lo = if lo.is_empty() { "0" } else { lo };
    let q = match hi {
        None => format!("{{{lo}}}"),
        Some(h) => format!("{{{lo},{h}}}"),
    };
    Some((q, close - i + 1))
}

/// `(` at `i`: the Rust spelling of the group opening and how many chars it took.
fn group_open(c: &[char], i: usize) -> Result<(String, usize), Problem> {
    if c.get(i + 1) != Some(&'?') {
        return Ok(("(".into(), 1));
    }
    let at = |k: usize| c.get(i + k).copied();
    match at(2) {
        Some(':') => Ok(("(?:".into(), 3)),
        Some('=' | '!') => Err(Problem::group(c, i, 12, LOOKAROUND)),
        Some('<') if matches!(at(3), Some('=' | '!')) => Err(Problem::group(c, i, 12, LOOKAROUND)),
        Some('P') if at(3) == Some('=') => Err(Problem::group(c, i, 12, BACKREF)),
        Some('P') if at(3) == Some('<') => named(c, i, 4),
        Some('<') => named(c, i, 3),
        Some('(') => Err(Problem::group(
            c,
            i,
            12,
            "a conditional group (?(…)…|…) needs a backtracking engine",
        )),
        Some('>') => Err(Problem::group(
            c,
            i,
            8,
            "an atomic group needs a backtracking engine",
        )),
        Some('#') => {
            let end = c[i..]
                .iter()
                .position(|&x| x == ')')
                .ok_or_else(|| Problem::new(c, i, 8, "an unterminated (?#comment"))?;
            Ok((String::new(), end + 1))
        }
        _ => {
            // Inline flags: (?aiLmsux) or (?flags:…), (?flags-flags:…).
            let mut k = 2;
            let mut flags = String::new();
            while let Some(f) = at(k) {
                match f {
                    'i' | 'm' | 's' | 'x' | '-' => flags.push(f),
                    'u' => {}
                    'a' | 'L' => {
                        return Err(Problem::new(
                            c,
                            i,
                            k + 1,
                            "the ASCII/locale flags (?a) (?L) have no equivalent",
                        ))
                    }
                    ':' | ')' => break,
                    _ => return Err(Problem::new(c, i, k + 1, "an unknown group syntax")),
                }
                k += 1;
            }
            match at(k) {
                Some(':') => Ok((format!("(?{flags}:"), k + 1)),
                Some(')') if flags.is_empty() => Ok((String::new(), k + 1)),
                Some(')') => Ok((format!("(?{flags})"), k + 1)),
                _ => Err(Problem::new(c, i, k, "an unterminated group")),
            }
        }
    }
}

/// `(?P<name>` / `(?<name>` with the name starting at `i + skip`.
fn named(c: &[char], i: usize, skip: usize) -> Result<(String, usize), Problem> {
    let start = i + skip;
    let end = c[start..]
        .iter()
        .position(|&x| x == '>')
        .map(|p| p + start)
        .ok_or_else(|| Problem::new(c, i, 12, "an unterminated group name"))?;
    let name: String = c[start..end].iter().collect();
    let ok = name
        .chars()
        .next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && name.chars().all(|x| x.is_ascii_alphanumeric() || x == '_');
    if !ok {
        return Err(Problem::new(
            c,
            i,
            end - i + 1,
            "a group name f2b cannot use",
        ));
    }
    Ok((format!("(?P<{name}>"), end - i + 1))
}

/// A backslash escape at `i` (inside a class or not): its Rust spelling and length.
fn escape(c: &[char], i: usize, in_class: bool) -> Result<(String, usize), Problem> {
    let Some(&n) = c.get(i + 1) else {
        return Err(Problem::new(c, i, 1, "a trailing backslash"));
    };
    let hex = |len: usize| -> Result<(String, usize), Problem> {
        let digits: String = c.iter().skip(i + 2).take(len).collect();
        if digits.len() == len && digits.chars().all(|d| d.is_ascii_hexdigit()) {
            Ok((format!("\\x{{{digits}}}"), 2 + len))
        } else {
            Err(Problem::new(c, i, 2 + len, "an incomplete hex escape"))
        }
    };
    Ok(match n {
        'd' if in_class => ("0-9".into(), 2),
        'd' => ("[0-9]".into(), 2),
        'D' if !in_class => ("[^0-9]".into(), 2),
        'D' | 'w' | 'W' | 's' | 'S' | 'n' | 't' | 'r' | 'f' | 'v' | 'a' => (format!("\\{n}"), 2),
        'b' if in_class => ("\\x08".into(), 2),
        'b' | 'B' | 'A' => (format!("\\{n}"), 2),
        'Z' => ("\\z".into(), 2),
        'x' => hex(2)?,
        'u' => hex(4)?,
        'U' => hex(8)?,
        '0' => {
            let digits: String = c
                .iter()
                .skip(i + 2)
                .take(2)
                .take_while(|d: &&char| ('0'..='7').contains(*d))
                .collect();
            let v = u32::from_str_radix(&format!("0{digits}"), 8).unwrap_or(0);
            (format!("\\x{{{v:x}}}"), 2 + digits.len())
        }
        '1'..='9' => {
            let digits: String = c.iter().skip(i + 1).take(3).collect();
            if digits.len() == 3 && digits.chars().all(|d| ('0'..='7').contains(&d)) {
                let v = u32::from_str_radix(&digits, 8).unwrap_or(0);
                (format!("\\x{{{v:x}}}"), 4)
            } else {
                return Err(Problem::new(c, i, 2, BACKREF));
            }
        }
        'g' if !in_class => return Err(Problem::new(c, i, 6, BACKREF)),
        n if n.is_ascii_alphanumeric() => {
            return Err(Problem::new(c, i, 2, "an escape Python itself rejects"))
        }
        n if n.is_whitespace() => (format!("\\x{{{:x}}}", n as u32), 2),
        n => (literal(n, in_class), 2),
    })
}

/// A literal character, escaped where Rust gives it a meaning.
fn literal(n: char, in_class: bool) -> String {
    let meta = if in_class {
        "[]\\^-&~"
    } else {
        "\\.+*?()|[]{}^$#&-~"
    };
    if meta.contains(n) {
        format!("\\{n}")
    } else {
        n.to_string()
    }
}

/// A character class starting at `i`; returns the index after it.
fn class(c: &[char], i: usize, out: &mut String) -> Result<usize, Problem> {
    let mut k = i + 1;
    out.push('[');
    if c.get(k) == Some(&'^') {
        out.push('^');
        k += 1;
    }
    // A `]` first is a literal.
    if c.get(k) == Some(&']') {
        out.push_str("\\]");
        k += 1;
    }
    while k < c.len() {
        match c[k] {
            ']' => {
                out.push(']');
                return Ok(k + 1);
            }
            '\\' => {
                let (s, n) = escape(c, k, true)?;
                out.push_str(&s);
                k += n;
            }
            '[' | '&' | '~' => {
                out.push('\\');
                out.push(c[k]);
                k += 1;
            }
            '-' if out.ends_with('-') && !out.ends_with("\\-") => {
                out.push_str("\\-");
                k += 1;
            }
            ch => {
                out.push(ch);
                k += 1;
            }
        }
    }
    Err(Problem::new(c, i, 12, "an unterminated character class"))
}

/// Split a Rust-syntax regex at its top-level `|` (not inside groups, classes or escapes).
pub fn top_level_alternatives(re: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    scan(re, |i, ch, in_class| {
        if in_class {
            return;
        }
        match ch {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            '|' if depth == 0 => {
                out.push(&re[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    });
    out.push(&re[start..]);
    out
}

/// Byte offsets of `^` and `$` outside classes and escapes.
pub fn anchors(re: &str) -> Vec<(usize, char)> {
    let mut v = Vec::new();
    scan(re, |i, ch, in_class| {
        if !in_class && (ch == '^' || ch == '$') {
            v.push((i, ch));
        }
    });
    v
}

/// Call `f(byte offset, char, inside a class)` for every character that is not escaped.
fn scan(re: &str, mut f: impl FnMut(usize, char, bool)) {
    let mut it = re.char_indices().peekable();
    let mut in_class = false;
    while let Some((i, ch)) = it.next() {
        if ch == '\\' {
            it.next();
            continue;
        }
        if in_class {
            if ch == ']' {
                in_class = false;
            } else {
                f(i, ch, true);
            }
            continue;
        }
        if ch == '[' {
            in_class = true;
            if it.peek().map(|p| p.1) == Some('^') {
                it.next();
            }
            if it.peek().map(|p| p.1) == Some(']') {
                it.next();
            }
            continue;
        }
        f(i, ch, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_what_differs_only_in_spelling() {
        for (py, rust) in [
            (
                r"^fail from <HOST> port \d+$",
                r"^fail from <HOST> port [0-9]+$",
            ),
            (r"[\d.:]+ x{,3} y{2,}", r"[0-9.:]+ x{0,3} y{2,}"),
            (r"(?P<user>\S+) (?:a|b)?? \Z", r"(?P<user>\S+) (?:a|b)?? \z"),
            (
                r"a{b} c} [[x&&y~~] [+--]",
                r"a\{b\} c\} [\[x\&\&y\~\~] [+-\-]",
            ),
            (r"\<x\> \' \/ \- \.", r"<x> ' / \- \."),
            (r"(?i)login(?#comment)(?u)", r"(?i)login"),
            (
                r"[]x] [^]] \x41 \u00e9 \0",
                r"[\]x] [^\]] \x{41} \x{00e9} \x{0}",
            ),
            (r"\ a", r"\x{20}a"),
        ] {
            assert_eq!(translate(py).unwrap(), rust, "{py}");
            regex::Regex::new(&rust.replace("<HOST>", "x")).unwrap();
        }
    }

    #[test]
    fn refuses_what_needs_backtracking() {
        for (py, snippet) in [
            (r"^a(?!b)c", "(?!b)"),
            (r"x(?<=y)", "(?<=y)"),
            (r"(a)\1", r"\1"),
            (r"(?P<x>a)(?P=x)", "(?P=x)"),
            (r"(?(x)a|b)", "(?(x)a|b)"),
            (r"a*+", "*+"),
            (r"(?>a)", "(?>a)"),
        ] {
            let p = translate(py).unwrap_err();
            assert!(p.snippet.starts_with(snippet), "{py}: {p:?}");
        }
    }

    #[test]
    fn alternatives_and_anchors() {
        assert_eq!(
            top_level_alternatives(r"^a(b|c)[|]\||^d"),
            vec![r"^a(b|c)[|]\|", "^d"]
        );
        assert_eq!(anchors(r"^a[$^]\$$"), vec![(0, '^'), (8, '$')]);
    }
}
