//! Every filter Debian's fail2ban ships, translated: each translates or says why, and the
//! translations find what fail2ban finds in fail2ban's own sample lines.

use super::*;

/// A jail on the systemd backend for each of fail2ban's filters `names` (as Debian ships
/// them), read: (filter name, jail).
fn stock_jails(dir: &Path, names: &[String]) -> Vec<(String, jails::JailDef)> {
    let etc = dir.join("etc");
    copy_dir(Path::new(ETC), &etc);
    let local: String = names
        .iter()
        .map(|n| format!("[t-{n}]\nenabled = true\nbackend = systemd\nfilter = {n}\n"))
        .collect();
    fs::write(etc.join("jail.local"), local).unwrap();
    let cfg = jails::read_config(&etc).unwrap();
    names
        .iter()
        .filter_map(
            |n| match jails::read_jail(&cfg, &etc, &format!("t-{n}")).unwrap() {
                jails::JailRead::Enabled(j) => Some((n.clone(), *j)),
                _ => None,
            },
        )
        .collect()
}

#[test]
fn every_stock_filter_translates_or_says_why() {
    if !fail2ban_or_skip("every_stock_filter_translates_or_says_why") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let mut names: Vec<String> = fs::read_dir(Path::new(ETC).join("filter.d"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".conf")
                .map(str::to_string)
        })
        .filter(|n| n != "common" && !n.starts_with("apache-common") && !n.ends_with("-common"))
        .collect();
    names.sort();
    let (mut whole, mut partial, mut patterns, mut translated) = (0, 0, 0, 0);
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for (n, j) in stock_jails(d.path(), &names) {
        let f = j.filter.as_ref().unwrap();
        let mut p = import::translate::patterns(&f.def.cfg, &f.effective);
        let refused = import::filterfile::validate(&mut p);
        // f2b's own loader refuses nothing the translation produced.
        assert!(refused.is_empty(), "{n}: {refused:?}");
        patterns += f.effective.failregex.len();
        translated += p.failregex.len() + p.pidregex.len();
        if p.problems.is_empty() {
            whole += 1;
        } else {
            partial += 1;
        }
        for (loc, m) in &p.problems {
            assert!(
                loc.line > 0 || loc.file.ends_with(".conf"),
                "{n}: {loc}: {m}"
            );
            let known = [
                "look-around",
                "back-reference",
                "conditional group",
                "several lines",
                "spans several lines",
                "no <HOST>",
                "anchor inside the failregex",
                "<DNS>",
                "inside an alternative",
                "no failregex",
                "prefregex without",
            ];
            let why = known
                .iter()
                .find(|k| m.contains(*k))
                .unwrap_or_else(|| panic!("{n}: {loc}: {m}"));
            *reasons.entry(why.to_string()).or_default() += 1;
        }
    }
    println!(
        "fail2ban's {} filters: {whole} translate whole, {partial} only in part; {translated} of {patterns} failregex carried over; refusals by reason: {reasons:?}",
        names.len()
    );
    assert!(whole > names.len() / 2, "{whole} of {}", names.len());
}

/// The sample log lines fail2ban ships with its filters, each with the address fail2ban
/// finds in it (`# failJSON: {"match": …, "host": …}`): the import's translation of each
/// filter run by f2b's own filter code on the line's MESSAGE finds the same.
#[test]
fn translated_filters_agree_with_fail2bans_samples() {
    if !fail2ban_or_skip("translated_filters_agree_with_fail2bans_samples") {
        return;
    }
    let logs = Path::new("/usr/lib/python3/dist-packages/fail2ban/tests/files/logs");
    if !logs.is_dir() {
        eprintln!(
            "SKIP translated_filters_agree_with_fail2bans_samples: no {}",
            logs.display()
        );
        return;
    }
    let syslog = regex::Regex::new(
        r"^(?:[A-Z][a-z]{2} [ 0-9]?[0-9] [0-9:]{8}(?: [0-9]{4})?|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(?:Z|[+-][0-9:]+)?)\s+(?:[^ \[\]]+\s+)??[A-Za-z0-9_./-]+(?:\[([0-9]+)\])?:\s(.*)$",
    )
    .unwrap();
    let d = tempfile::tempdir().unwrap();
    let mut names: Vec<String> = fs::read_dir(logs)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| Path::new(ETC).join(format!("filter.d/{n}.conf")).is_file())
        .collect();
    names.sort();
    let (mut agree, mut checked, mut filters) = (0usize, 0usize, 0usize);
    let mut wrong = Vec::new();
    for (n, j) in stock_jails(d.path(), &names) {
        let f = j.filter.as_ref().unwrap();
        let mut p = import::translate::patterns(&f.def.cfg, &f.effective);
        import::filterfile::validate(&mut p);
        if !p.problems.is_empty()
            || f.effective
                .maxlines
                .as_ref()
                .is_some_and(|v| v.text.trim() != "1")
        {
            continue;
        }
        let text = import::filterfile::translated(&n, &[], &["_SYSTEMD_UNIT=x.service".into()], &p);
        let compiled = import::filterfile::check(&n, &text)
            .unwrap()
            .compile(None)
            .unwrap();
        filters += 1;
        let mut pids = f2b::filter::PidCache::default();
        let mut expect: Option<serde_json::Value> = None;
        for line in fs::read_to_string(logs.join(&n)).unwrap().lines() {
            if line.starts_with("# filterOptions") {
                break; // other modes and log types follow
            }
            if let Some(j) = line.strip_prefix("# failJSON:") {
                expect = serde_json::from_str(j.trim()).ok();
                continue;
            }
            let Some(e) = expect.take() else { continue };
            let Some(c) = syslog.captures(line) else {
                continue;
            };
            let (Some(want), host) = (e["match"].as_bool(), e["host"].as_str()) else {
                continue;
            };
            if want && host.is_none_or(|h| h.parse::<std::net::IpAddr>().is_err()) {
                continue;
            }
            let pid = c.get(1).and_then(|p| p.as_str().parse().ok());
            let got = compiled.apply(&c[2], pid, 0, &mut pids);
            let ok = match (&got, want) {
                (f2b::filter::Outcome::Failure { addr, .. }, true) => {
                    Some(addr.to_string())
                        == host.map(|h| {
                            h.parse::<std::net::IpAddr>()
                                .unwrap()
                                .to_canonical()
                                .to_string()
                        })
                }
                (f2b::filter::Outcome::Failure { .. }, false) => false,
                (_, want) => !want,
            };
            checked += 1;
            if ok {
                agree += 1;
            } else {
                wrong.push(format!("{n}: {line} → {got:?} (fail2ban: {e})"));
            }
        }
    }
    println!(
        "{filters} translated fail2ban filters on fail2ban's own samples: {agree} of {checked} lines as fail2ban"
    );
    for w in wrong.iter().take(40) {
        println!("  differs: {w}");
    }
    assert!(checked >= 100, "{checked}");
    assert!(agree * 100 >= checked * 95, "{agree} of {checked}");
}
