//! The jail's ban in f2b's nftables table, from fail2ban's firewall actions: their ports
//! (numbers, services of /etc/services, `a:b` ranges; all ports for `*-allports` actions),
//! protocol, and whether they reject (`blocktype`) or drop.

use super::actions::Enforcement;
use super::jails::JailDef;
use super::settings::Keys;

/// Ports, protocol and verdict from the firewall actions.
pub fn enforcement(e: &Enforcement, keys: &mut Keys, jail: &JailDef) {
    let at = |o: &str| {
        jail.get(o)
            .ok()
            .flatten()
            .map(|v| v.loc)
            .or_else(|| jail.opts.get("action").map(|v| v.loc.clone()))
            .unwrap_or_else(|| jail.loc.clone())
    };
    if e.reject {
        keys.keys
            .insert("action", ("reject".into(), at("banaction")));
    }
    let loc = at("port");
    if !e.firewall || e.ports.iter().any(|p| p == "*") {
        return;
    }
    let protocol = match e.protocols.as_slice() {
        [] => "tcp",
        [p] if p == "tcp" || p == "udp" => p.as_str(),
        [p] if p == "all" => return,
        ps if ps.iter().all(|p| p == "tcp" || p == "udp") => "tcp+udp",
        ps => {
            keys.notes.push((
                loc,
                format!("protocols {}: the ban covers every protocol", ps.join(", ")),
            ));
            return;
        }
    };
    let mut ports = Vec::new();
    for p in &e.ports {
        match port(p) {
            Some(v) => ports.push(v),
            None => {
                keys.notes.push((
                    loc.clone(),
                    format!(
                        "port {p:?} is no port number or known service: the ban covers every port"
                    ),
                ));
                return;
            }
        }
    }
    if ports.is_empty() {
        return;
    }
    keys.keys
        .insert("ports", (toml::Value::Array(ports), loc.clone()));
    if protocol != "tcp" {
        keys.keys.insert("protocol", (protocol.into(), loc));
    }
}

/// A fail2ban port (`22`, `ssh`, `1000:2000`, `1000-2000`) as an f2b `ports` item.
fn port(p: &str) -> Option<toml::Value> {
    let known = |s: &str| s.parse::<u16>().is_ok_and(|n| n > 0) || service_known(s);
    if let Some((a, b)) = p.split_once([':', '-']) {
        return (known(a) && known(b)).then(|| format!("{a}-{b}").into());
    }
    if let Ok(n) = p.parse::<u16>() {
        return (n > 0).then(|| i64::from(n).into());
    }
    service_known(p).then(|| p.into())
}

/// Is `name` a service of /etc/services (what f2b resolves port names with)?
fn service_known(name: &str) -> bool {
    let Ok(text) = std::fs::read_to_string("/etc/services") else {
        return false;
    };
    text.lines().any(|l| {
        let l = l.split('#').next().unwrap_or("");
        let mut w = l.split_whitespace();
        let svc = w.next();
        let proto = w.next().and_then(|p| p.split_once('/')).map(|(_, pr)| pr);
        proto == Some("tcp") && (svc == Some(name) || w.any(|a| a == name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail2ban_ports() {
        assert_eq!(port("22"), Some(toml::Value::from(22)));
        assert_eq!(port("ssh"), Some(toml::Value::from("ssh")));
        assert_eq!(port("1000:2000"), Some(toml::Value::from("1000-2000")));
        assert_eq!(port("no-such-service"), None);
        assert_eq!(port("0"), None);
    }
}
