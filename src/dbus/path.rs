//! Object path labels escaped the way systemd escapes them (`sd_bus_path_encode`): every byte
//! outside `[A-Za-z0-9]`, and a leading digit, becomes `_` plus two lowercase hex digits; the
//! empty string becomes `_`.

/// Prefix of the jail objects: `/org/f2b/jail/<escaped name>`.
pub const JAIL_PATH_PREFIX: &str = "/org/f2b/jail";

/// Escape one path label.
pub fn escape_label(s: &str) -> String {
    if s.is_empty() {
        return "_".into();
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(s.len() * 3);
    for (i, &b) in s.as_bytes().iter().enumerate() {
        if b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()) {
            out.push(b as char);
        } else {
            out.push('_');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
    out
}

/// Undo [`escape_label`]; `None` if `s` is not a valid escaped label.
pub fn unescape_label(s: &str) -> Option<String> {
    if s == "_" {
        return Some(String::new());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'_' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else if b[i].is_ascii_alphanumeric() {
            out.push(b[i]);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

/// The object path of a jail.
pub fn jail_path(name: &str) -> String {
    format!("{JAIL_PATH_PREFIX}/{}", escape_label(name))
}

/// The jail name of an object path under [`JAIL_PATH_PREFIX`].
pub fn jail_name(path: &str) -> Option<String> {
    let label = path.strip_prefix(JAIL_PATH_PREFIX)?.strip_prefix('/')?;
    if label.contains('/') {
        return None;
    }
    unescape_label(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_systemd() {
        // Same results as `systemd-escape`-style sd_bus_path_encode.
        assert_eq!(escape_label("sshd"), "sshd");
        assert_eq!(escape_label("nginx-http_auth"), "nginx_2dhttp_5fauth");
        assert_eq!(escape_label("1jail"), "_31jail");
        assert_eq!(escape_label("a1"), "a1");
        assert_eq!(escape_label(""), "_");
        assert_eq!(escape_label("ü"), "_c3_bc");
        assert_eq!(jail_path("sshd"), "/org/f2b/jail/sshd");
    }

    #[test]
    fn round_trips() {
        for s in ["sshd", "nginx-http_auth", "1jail", "", "a.b c", "ü-9"] {
            let e = escape_label(s);
            assert!(zbus::ObjectPath::try_from(format!("/x/{e}")).is_ok(), "{e}");
            assert_eq!(unescape_label(&e).as_deref(), Some(s));
            assert_eq!(jail_name(&jail_path(s)).as_deref(), Some(s));
        }
        assert_eq!(unescape_label("_4"), None);
        assert_eq!(unescape_label("_zz"), None);
        assert_eq!(jail_name("/org/f2b/jail/a/b"), None);
        assert_eq!(jail_name("/org/f2b/other"), None);
    }
}
