use super::*;
use std::net::IpAddr;

fn def(text: &str) -> Result<FilterDef, FilterError> {
    FilterDef::parse("t", "t.toml", text)
}

fn fail(f: &CompiledFilter, msg: &str) -> Option<(IpAddr, Option<String>)> {
    match f.apply(msg, None, 0, &mut Sessions::default()) {
        Outcome::Failure { addr, user, .. } => Some((addr, user)),
        _ => None,
    }
}

#[test]
fn anchored_pattern_resists_address_injection() {
    let d = def(r#"failregex = ['^Invalid user (?P<user>.*) from <HOST> port [0-9]+$']"#).unwrap();
    let f = d.compile(None).unwrap();
    let (ip, user) = fail(
        &f,
        "Invalid user admin from 10.0.0.1 from 203.0.113.9 port 22",
    )
    .unwrap();
    assert_eq!(ip.to_string(), "203.0.113.9");
    assert_eq!(user.as_deref(), Some("admin from 10.0.0.1"));
    let (ip, _) = fail(
        &f,
        "Invalid user x from 10.0.0.1 port 22 from 203.0.113.9 port 22",
    )
    .unwrap();
    assert_eq!(ip.to_string(), "203.0.113.9");
    assert_eq!(
        fail(&f, "Invalid user x from 10.0.0.1 port 22 trailing"),
        None
    );
}

#[test]
fn backtracking_constructs_are_refused_with_location() {
    let e = def("\n\nfailregex = ['^(?=x)foo <HOST>$']")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("t.toml:3:"), "{e}");
    assert!(e.contains("backtracking"), "{e}");
    let e = def(r#"failregex = ['^(a)\1 <HOST>$']"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("backtracking"), "{e}");
}

#[test]
fn unknown_keys_and_missing_host_are_errors() {
    let e = def("failregex = []\nfoo = 1").unwrap_err().to_string();
    assert!(e.starts_with("t.toml:2:"), "{e}");
    let e = def("failregex = ['^no host here$']")
        .unwrap_err()
        .to_string();
    assert!(e.contains("no <HOST>"), "{e}");
    let e = def("failregex = ['^<HOST> and <HOST>$']")
        .unwrap_err()
        .to_string();
    assert!(e.contains("more than one"), "{e}");
    let e = def("matches = ['MESSAGE=x']").unwrap_err().to_string();
    assert!(e.contains("MESSAGE"), "{e}");
}

#[test]
fn modes_include_and_default() {
    let d = def(r#"
default_mode = "normal"
failregex = ['^base <HOST>$']
[modes.normal]
failregex = ['^normal <HOST>$']
[modes.aggressive]
include = ["normal"]
failregex = ['^aggr <HOST>$']
"#)
    .unwrap();
    let n = d.compile(None).unwrap();
    assert_eq!(n.mode.as_deref(), Some("normal"));
    assert!(fail(&n, "base 1.2.3.4").is_some());
    assert!(fail(&n, "normal 1.2.3.4").is_some());
    assert!(fail(&n, "aggr 1.2.3.4").is_none());
    let a = d.compile(Some("aggressive")).unwrap();
    assert!(fail(&a, "normal 1.2.3.4").is_some());
    assert!(fail(&a, "aggr 1.2.3.4").is_some());
    assert!(d.compile(Some("nope")).is_err());
}

#[test]
fn ignoreregex_and_vars_and_fuser() {
    let d = def(r#"
failregex = ['^auth failed for <F-USER>[^ ]+</F-USER> from <HOST> <tail>$']
ignoreregex = ['for trusted ']
[vars]
tail = 'port [0-9]+'
"#)
    .unwrap();
    let f = d.compile(None).unwrap();
    assert_eq!(
        fail(&f, "auth failed for bob from 2001:db8::7 port 5"),
        Some(("2001:db8::7".parse().unwrap(), Some("bob".into())))
    );
    assert!(matches!(
        f.apply(
            "auth failed for trusted from 1.2.3.4 port 5",
            None,
            0,
            &mut Sessions::default()
        ),
        Outcome::Ignored { .. }
    ));
}

#[test]
fn tag_after_optional_group_is_expanded() {
    let d = def(r#"failregex = ['^from (?:x )?<HOST>$']"#).unwrap();
    let f = d.compile(None).unwrap();
    assert_eq!(
        fail(&f, "from x 192.0.2.7").unwrap().0.to_string(),
        "192.0.2.7"
    );
    let d = def(r#"failregex = ['^(?P<a>x)?<HOST>$']"#).unwrap();
    assert!(fail(&d.compile(None).unwrap(), "x192.0.2.7").is_some());
}

#[test]
fn pid_correlation() {
    let d = def(r#"
failregex = ['^Too many failures$']
pidregex = ['^Connection from <HOST> port [0-9]+$']
"#)
    .unwrap();
    let f = d.compile(None).unwrap();
    let mut pids = Sessions::default();
    assert_eq!(
        f.apply("Connection from 198.51.100.4 port 1", Some(7), 1, &mut pids),
        Outcome::Miss
    );
    assert!(matches!(
        f.apply("Too many failures", Some(7), 2, &mut pids),
        Outcome::Failure { addr, .. } if addr.to_string() == "198.51.100.4"
    ));
    assert!(matches!(
        f.apply("Too many failures", Some(8), 3, &mut pids),
        Outcome::NoAddress { .. }
    ));
    assert!(matches!(
        f.apply("Too many failures", None, 3, &mut pids),
        Outcome::NoAddress { .. }
    ));
}

#[test]
fn every_builtin_filter_passes_its_samples() {
    let lib = library::FilterLibrary::load(&[]).unwrap();
    assert!(!lib.filters.is_empty());
    let mut failures = Vec::new();
    for (name, def) in &lib.filters {
        let Some(text) = library::builtin_samples(name) else {
            failures.push(format!(
                "filter {name} has no sample file tests/samples/{name}.toml"
            ));
            continue;
        };
        let origin = format!("tests/samples/{name}.toml");
        let file = match samples::parse(&origin, text) {
            Ok(s) => s,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let report = samples::check(def, &origin, &file);
        failures.extend(report.problems);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn identifiers_take_globs() {
    let d = def(r#"identifiers = ["postfix*/smtpd", "ovpn-?"]
failregex = ['^x <HOST>$']"#)
    .unwrap();
    for ident in [
        "postfix/smtpd",
        "postfix-incoming/smtpd",
        "postfix/submission/smtpd",
        "ovpn-a",
    ] {
        assert!(d.selects_ident(ident), "{ident}");
    }
    for ident in [
        "postfix/smtp",
        "postfix/smtpd2",
        "xpostfix/smtpd",
        "ovpn-ab",
    ] {
        assert!(!d.selects_ident(ident), "{ident}");
    }
}
