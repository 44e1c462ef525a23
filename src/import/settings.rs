//! fail2ban's counting and banning options → f2b's jail keys: maxretry, findtime, bantime
//! (`-1` = permanent), ignoreip (addresses, CIDRs, netmasks, `file:` lists, DNS names
//! resolved once), ignoreself, `bantime.*` increment options, and the ban's ports.

use std::collections::BTreeMap;
use std::fs;
use std::net::{IpAddr, ToSocketAddrs};
use std::time::Duration;

use ipnet::IpNet;

use super::duration::str2seconds;
use super::ini::Value;
use super::jails::as_bool;
use crate::config::format_duration;
use crate::location::Location;

/// f2b jail keys with the location each came from, and what the report says about them.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    pub keys: BTreeMap<&'static str, (toml::Value, Location)>,
    pub notes: Vec<(Location, String)>,
    pub lost: Vec<(Location, String)>,
}

impl Keys {
    fn set(&mut self, key: &'static str, v: impl Into<toml::Value>, loc: &Location) {
        self.keys.insert(key, (v.into(), loc.clone()));
    }
}

fn dur(secs: f64) -> toml::Value {
    format_duration(Duration::from_secs(secs.round().max(0.0) as u64)).into()
}

/// fail2ban's built-in values where `jail.conf` says nothing.
const BUILTIN: &[(&str, &str)] = &[("maxretry", "3"), ("findtime", "600"), ("bantime", "600")];

/// Convert the options `get` finds (a jail's, or `[DEFAULT]`'s with `builtin`).
pub fn convert(get: &dyn Fn(&str) -> Option<Value>, builtin: bool) -> Keys {
    let mut k = Keys::default();
    let get = |o: &str| {
        get(o).or_else(|| {
            builtin
                .then(|| BUILTIN.iter().find(|(b, _)| *b == o))
                .flatten()
                .map(|(_, v)| Value::new(*v, Location::new("(fail2ban built-in)", 0)))
        })
    };
    if let Some(v) = get("maxretry") {
        match v.text.trim().parse::<i64>() {
            Ok(n) if n >= 1 => k.set("maxretry", n, &v.loc),
            _ => k.lost.push((
                v.loc.clone(),
                format!("maxretry {:?} is not a count", v.text),
            )),
        }
    }
    if let Some(v) = get("findtime") {
        match str2seconds(&v.text) {
            Ok(s) if s >= 1.0 => k.set("findtime", dur(s), &v.loc),
            Ok(_) | Err(_) => k.lost.push((
                v.loc.clone(),
                format!("findtime {:?} is not a time", v.text),
            )),
        }
    }
    let mut bantime = None;
    if let Some(v) = get("bantime") {
        match str2seconds(&v.text) {
            Ok(s) if s < 0.0 => k.set("bantime", -1, &v.loc),
            Ok(s) if s >= 1.0 => {
                bantime = Some(s);
                k.set("bantime", dur(s), &v.loc)
            }
            _ => k
                .lost
                .push((v.loc.clone(), format!("bantime {:?} is not a time", v.text))),
        }
    }
    if let Some(v) = get("ignoreself") {
        k.set("ignoreself", as_bool(&v.text), &v.loc);
    }
    if let Some(v) = get("ignoreip") {
        let (nets, notes, lost) = ignoreip(&v.text);
        k.notes
            .extend(notes.into_iter().map(|n| (v.loc.clone(), n)));
        k.lost.extend(lost.into_iter().map(|n| (v.loc.clone(), n)));
        k.set(
            "ignoreip",
            toml::Value::Array(
                nets.iter()
                    .map(|n| toml::Value::from(net_text(n)))
                    .collect(),
            ),
            &v.loc,
        );
    }
    if let Some(v) = get("ignorecommand").filter(|v| !v.text.trim().is_empty()) {
        k.lost.push((
            v.loc.clone(),
            format!(
                "ignorecommand {:?}: f2b runs no command to decide whether to ban",
                v.text.trim()
            ),
        ));
    }
    increment(&get, bantime, &mut k);
    k
}

fn increment(get: &dyn Fn(&str) -> Option<Value>, bantime: Option<f64>, k: &mut Keys) {
    let Some(inc) = get("bantime.increment") else {
        return;
    };
    let on = as_bool(&inc.text);
    k.set("bantime_increment", on, &inc.loc);
    if !on {
        return;
    }
    let mut factor = 1.0;
    if let Some(v) = get("bantime.factor") {
        match v.text.trim().parse::<f64>() {
            Ok(f) if f > 0.0 && f.is_finite() => factor = f,
            _ => k.lost.push((
                v.loc.clone(),
                format!("bantime.factor {:?} is not a positive number", v.text),
            )),
        }
    }
    let mut top = factor * f64::from(1u32 << 20);
    match get("bantime.multipliers").filter(|v| !v.text.trim().is_empty()) {
        Some(v) => {
            let m: Result<Vec<f64>, _> = v
                .text
                .split_whitespace()
                .map(|x| x.parse::<f64>().map(|n| n * factor))
                .collect();
            match m {
                Ok(m) if !m.is_empty() && m.iter().all(|x| *x > 0.0) => {
                    top = m.iter().cloned().fold(0.0, f64::max);
                    if factor != 1.0 {
                        k.notes.push((
                            v.loc.clone(),
                            format!("bantime.factor {factor} multiplied into the multipliers"),
                        ));
                    }
                    k.set(
                        "bantime_multipliers",
                        toml::Value::Array(m.into_iter().map(toml::Value::from).collect()),
                        &v.loc,
                    );
                }
                _ => k.lost.push((
                    v.loc.clone(),
                    format!("bantime.multipliers {:?} are not positive numbers", v.text),
                )),
            }
        }
        None => {
            if factor != 1.0 {
                k.set("bantime_factor", factor, &inc.loc);
            }
        }
    }
    if let Some(v) = get("bantime.formula").filter(|v| !v.text.trim().is_empty()) {
        k.lost.push((
            v.loc.clone(),
            format!(
                "bantime.formula {:?}: f2b computes bantime × factor × 2^(n−1) (or the multipliers) and runs no formula",
                v.text.trim()
            ),
        ));
    }
    match get("bantime.maxtime").filter(|v| !v.text.trim().is_empty()) {
        Some(v) => match str2seconds(&v.text) {
            Ok(s) if s >= 1.0 => k.set("bantime_maxtime", dur(s), &v.loc),
            _ => k.lost.push((
                v.loc.clone(),
                format!("bantime.maxtime {:?} is not a time", v.text),
            )),
        },
        None => {
            // fail2ban has no cap but its formula's (2^20); f2b's default would be a week.
            if let Some(b) = bantime {
                let cap = (b * top).min(100.0 * 365.25 * 86_400.0);
                k.set("bantime_maxtime", dur(cap), &inc.loc);
                k.notes.push((
                    inc.loc.clone(),
                    "no bantime.maxtime in fail2ban: the longest ban is fail2ban's own limit of the formula".into(),
                ));
            }
        }
    }
    if let Some(v) = get("bantime.rndtime").filter(|v| !v.text.trim().is_empty()) {
        match str2seconds(&v.text) {
            Ok(s) if s >= 0.0 => k.set("bantime_rndtime", dur(s), &v.loc),
            _ => k.lost.push((
                v.loc.clone(),
                format!("bantime.rndtime {:?} is not a time", v.text),
            )),
        }
    }
    if let Some(v) = get("bantime.overalljails") {
        k.set("bantime_overalljails", as_bool(&v.text), &v.loc);
    }
}

fn net_text(n: &IpNet) -> String {
    if n.prefix_len() == n.max_prefix_len() {
        n.addr().to_string()
    } else {
        n.to_string()
    }
}

/// fail2ban's ignoreip entries → networks; (networks, notes, what could not be used).
pub fn ignoreip(text: &str) -> (Vec<IpNet>, Vec<String>, Vec<String>) {
    let mut nets = Vec::new();
    let mut notes = Vec::new();
    let mut lost = Vec::new();
    let mut entries: Vec<String> = Vec::new();
    for e in text.split([' ', ',', '\n', '\t']).filter(|e| !e.is_empty()) {
        match e.strip_prefix("file:") {
            Some(path) => match fs::read_to_string(path) {
                Ok(t) => {
                    let before = entries.len();
                    for line in t.lines() {
                        let line = line.split('#').next().unwrap_or("");
                        entries.extend(
                            line.split([' ', ',', '\t'])
                                .filter(|x| !x.is_empty())
                                .map(str::to_string),
                        );
                    }
                    notes.push(format!(
                        "ignoreip {e}: {} entries read now (f2b does not re-read the file)",
                        entries.len() - before
                    ));
                }
                Err(err) => lost.push(format!("ignoreip {e}: cannot read it: {err}")),
            },
            None => entries.push(e.to_string()),
        }
    }
    for e in entries {
        match parse_net(&e) {
            Some(n) => {
                if n.trunc() != n {
                    notes.push(format!("ignoreip {e}: written {}", n.trunc()));
                }
                nets.push(n.trunc());
            }
            None => match (e.as_str(), 0).to_socket_addrs() {
                Ok(addrs) => {
                    let mut found: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
                    found.sort();
                    found.dedup();
                    if found.is_empty() {
                        lost.push(format!("ignoreip {e}: the name has no address"));
                    }
                    notes.push(format!(
                        "ignoreip {e}: the name resolved once to {} (f2b keeps addresses only)",
                        found.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")
                    ));
                    nets.extend(found.into_iter().map(IpNet::from));
                }
                Err(err) => lost.push(format!(
                    "ignoreip {e}: not an address, and the name does not resolve ({err}); this host would no longer be exempt"
                )),
            },
        }
    }
    nets.sort();
    nets.dedup();
    (nets, notes, lost)
}

fn parse_net(e: &str) -> Option<IpNet> {
    if let Ok(ip) = e.parse::<IpAddr>() {
        return Some(IpNet::from(ip));
    }
    let (a, m) = e.split_once('/')?;
    let ip: IpAddr = a.parse().ok()?;
    let len = match m.parse::<u8>() {
        Ok(l) => l,
        // A netmask such as 255.255.255.0.
        Err(_) => match m.parse::<IpAddr>().ok()? {
            IpAddr::V4(mask) => {
                let bits = u32::from(mask);
                if bits.leading_ones() + bits.trailing_zeros() != 32 {
                    return None;
                }
                bits.leading_ones() as u8
            }
            IpAddr::V6(_) => return None,
        },
    };
    IpNet::new(ip, len).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(pairs: &[(&str, &str)], builtin: bool) -> Keys {
        let m: BTreeMap<String, Value> = pairs
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    Value::new(*v, Location::new("jail.local", 1)),
                )
            })
            .collect();
        convert(&|o| m.get(o).cloned(), builtin)
    }

    #[test]
    fn durations_counts_and_increment() {
        let k = keys(
            &[
                ("bantime", "1h 30m"),
                ("findtime", "1d12h"),
                ("bantime.increment", "true"),
                ("bantime.factor", "2"),
                ("bantime.maxtime", "5w"),
                ("bantime.overalljails", "yes"),
                ("ignoreself", "false"),
            ],
            true,
        );
        let v = |key: &str| k.keys[key].0.clone();
        assert_eq!(v("maxretry"), toml::Value::from(3));
        assert_eq!(v("bantime"), toml::Value::from("1h30m"));
        assert_eq!(v("findtime"), toml::Value::from("1d12h"));
        assert_eq!(v("bantime_factor"), toml::Value::from(2.0));
        assert_eq!(v("bantime_maxtime"), toml::Value::from("5w"));
        assert_eq!(v("bantime_overalljails"), toml::Value::from(true));
        assert_eq!(v("ignoreself"), toml::Value::from(false));
        assert!(k.lost.is_empty());
        let k = keys(
            &[
                ("bantime", "-1"),
                ("bantime.increment", "true"),
                ("bantime.multipliers", "1 5 30"),
                ("bantime.factor", "2"),
                ("bantime.formula", "ban.Time * 3"),
            ],
            false,
        );
        assert_eq!(k.keys["bantime"].0, toml::Value::from(-1));
        assert_eq!(
            k.keys["bantime_multipliers"].0,
            toml::Value::Array(vec![2.0.into(), 10.0.into(), 60.0.into()])
        );
        assert_eq!(k.lost.len(), 1, "{:?}", k.lost);
        assert!(!k.keys.contains_key("maxretry"));
    }

    #[test]
    fn ignoreip_forms() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("trusted");
        fs::write(&f, "# office\n198.51.100.0/24, 2001:db8::/32\n").unwrap();
        let (nets, notes, lost) = ignoreip(&format!(
            "127.0.0.1/8 ::1 10.1.2.3/255.255.0.0 localhost file:{} no-such-host.invalid",
            f.display()
        ));
        let t: Vec<String> = nets.iter().map(net_text).collect();
        for want in [
            "127.0.0.0/8",
            "::1",
            "10.1.0.0/16",
            "198.51.100.0/24",
            "2001:db8::/32",
        ] {
            assert!(t.contains(&want.to_string()), "{want} in {t:?}");
        }
        assert!(notes.iter().any(|n| n.contains("localhost")), "{notes:?}");
        assert_eq!(lost.len(), 1, "{lost:?}");
    }
}
