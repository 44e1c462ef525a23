//! fail2ban's actions → f2b: firewall actions (iptables*, nftables*, firewallcmd*, ipset, …)
//! become the jail's own nftables ban (ports, protocol, drop or reject from their options);
//! mail actions (`mail*`, `sendmail*`, hence `action_mw`/`action_mwl`) become a mail action;
//! `abuseipdb` an abuseipdb action; any other action a command action running its
//! `actionban`/`actionunban` with the fields f2b gives, or a report of why not.

use std::path::Path;

use super::definition::{Definition, ACTION_OPTS};
use super::ini::Value;
use super::interp::{extract_options, split_with_options, Vars};
use super::jails::JailDef;
use super::reader::Scope;
use super::ImportError;
use crate::location::Location;

/// How the jail's bans are enforced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enforcement {
    /// Port specs as fail2ban wrote them (`ssh`, `80`, `1000:2000`); empty = every port.
    pub ports: Vec<String>,
    /// `tcp`, `udp`, `all`, … as the actions said.
    pub protocols: Vec<String>,
    /// Some action rejects (REJECT) rather than drops.
    pub reject: bool,
    /// A firewall action was configured at all.
    pub firewall: bool,
}

/// An f2b action (`[action.NAME]`) a jail needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Notify {
    /// The fail2ban action as written.
    pub from: String,
    pub loc: Location,
    /// A name for `[action.NAME]` (made unique when written).
    pub hint: String,
    pub table: toml::Table,
    /// A secret to write into a file of its own: (file name, contents); the table refers to it.
    pub secret: Option<(String, String)>,
}

/// What became of one jail's actions.
#[derive(Debug, Clone, Default)]
pub struct ActionPlan {
    pub enforcement: Enforcement,
    pub notify: Vec<Notify>,
    /// (where, what) mapped with a change worth saying.
    pub notes: Vec<(Location, String)>,
    /// (where, what) fail2ban did that f2b will not.
    pub lost: Vec<(Location, String)>,
}

const FIREWALL: &[&str] = &[
    "iptables",
    "ip6tables",
    "nftables",
    "firewallcmd",
    "shorewall",
    "ufw",
    "route",
    "pf",
    "bsd-ipfw",
    "ipfw",
    "npf",
    "apf",
    "hostsdeny",
    "ipset",
];
const ALLPORTS: &[&str] = &["route", "hostsdeny", "shorewall", "apf"];

fn kind_of(name: &str) -> &'static str {
    let stem = name.split('-').next().unwrap_or(name);
    if FIREWALL.contains(&stem) || FIREWALL.contains(&name) {
        "firewall"
    } else if stem == "mail" || stem == "sendmail" {
        "mail"
    } else if name == "abuseipdb" {
        "abuseipdb"
    } else if name == "dummy" {
        "dummy"
    } else {
        "command"
    }
}

/// fail2ban's action tags and the f2b field each one is.
const FIELDS: &[(&str, &str)] = &[
    ("ip", "address"),
    ("name", "jail"),
    ("bantime", "bantime"),
    ("failures", "failures"),
    ("time", "time"),
    ("bancount", "bancount"),
    ("fq-hostname", "hostname"),
];

/// Plan the jail's actions.
pub fn plan(jail: &JailDef, base: &Path) -> Result<ActionPlan, ImportError> {
    let mut out = ActionPlan::default();
    let Some(action) = jail.opts.get("action") else {
        return Ok(out);
    };
    let jail_vars: Vars = jail.opts.clone();
    for spec in split_with_options(&action.text) {
        let (aname, aopts) = match extract_options(&spec) {
            Ok(x) => x,
            Err(e) => {
                out.lost
                    .push((action.loc.clone(), format!("action {spec:?}: {e}")));
                continue;
            }
        };
        if aname.ends_with(".py") {
            out.lost.push((
                action.loc.clone(),
                format!("action {aname}: a Python action cannot be carried over"),
            ));
            continue;
        }
        let kind = kind_of(&aname);
        if kind == "dummy" {
            out.notes.push((
                action.loc.clone(),
                "action dummy does nothing: left out".into(),
            ));
            continue;
        }
        let Some(def) = Definition::read(base, "action.d", &aname, Scope::All)? else {
            out.lost.push((
                action.loc.clone(),
                format!("action {aname}: no action.d/{aname}.conf"),
            ));
            continue;
        };
        let mut init: Vars = aopts
            .iter()
            .map(|(k, v)| (k.clone(), Value::new(v.as_str(), action.loc.clone())))
            .collect();
        init.entry("name".into())
            .or_insert_with(|| Value::new(jail.name.as_str(), action.loc.clone()));
        let opts = match def.combined(ACTION_OPTS, &jail_vars, &init, false) {
            Ok(o) => o,
            Err(e) => {
                out.lost.push((e.loc, format!("action {aname}: {}", e.msg)));
                continue;
            }
        };
        let get = |k: &str| opts.get(k).map(|v| v.text.trim().to_string());
        match kind {
            "firewall" => {
                let e = &mut out.enforcement;
                e.firewall = true;
                let all = aname.contains("allports") || ALLPORTS.contains(&aname.as_str());
                let port = get("port").unwrap_or_default();
                if all || is_all_ports(&port) {
                    e.ports.clear();
                    e.ports.push("*".into());
                } else if !e.ports.iter().any(|p| p == "*") {
                    for p in port.split([',', ' ']).filter(|p| !p.is_empty()) {
                        if !e.ports.iter().any(|x| x == p) {
                            e.ports.push(p.to_string());
                        }
                    }
                }
                if let Some(p) = get("protocol").filter(|p| !p.is_empty()) {
                    if !e.protocols.contains(&p) {
                        e.protocols.push(p);
                    }
                }
                if get("blocktype").is_some_and(|b| b.to_lowercase().contains("reject")) {
                    e.reject = true;
                }
            }
            "mail" => {
                let mut t = toml::Table::new();
                t.insert("type".into(), "mail".into());
                // fail2ban's mail actions hand the mail to the local MTA (sendmail).
                t.insert("server".into(), "localhost".into());
                t.insert("tls".into(), "none".into());
                // fail2ban's default recipient is root, a local mailbox.
                let dest = get("dest").filter(|d| !d.trim().is_empty());
                let to: Vec<toml::Value> = (dest.as_deref().unwrap_or("root"))
                    .split([',', ' '])
                    .filter(|d| !d.is_empty())
                    .map(|d| match d.contains('@') {
                        true => d.to_string().into(),
                        false => format!("{d}@localhost").into(),
                    })
                    .collect();
                t.insert("to".into(), toml::Value::Array(to));
                match get("sender") {
                    Some(s) if !s.contains('<') => {
                        t.insert("from".into(), s.into());
                    }
                    Some(s) => out.notes.push((
                        action.loc.clone(),
                        format!("action {aname}: sender {s:?} uses a fail2ban tag; f2b's default sender is used"),
                    )),
                    None => {}
                }
                if aname.contains("whois") {
                    out.notes.push((
                        action.loc.clone(),
                        format!("action {aname}: f2b's mail has no whois lookup of the address"),
                    ));
                }
                out.notify.push(Notify {
                    from: aname.clone(),
                    loc: action.loc.clone(),
                    hint: "mail".into(),
                    table: t,
                    secret: None,
                });
            }
            "abuseipdb" => {
                let mut t = toml::Table::new();
                t.insert("type".into(), "abuseipdb".into());
                let cats: Vec<toml::Value> = get("abuseipdb_category")
                    .unwrap_or_default()
                    .split([',', ' '])
                    .filter_map(|c| c.trim().parse::<i64>().ok())
                    .map(toml::Value::from)
                    .collect();
                if !cats.is_empty() {
                    t.insert("categories".into(), toml::Value::Array(cats));
                }
                let key = get("abuseipdb_apikey").filter(|k| !k.is_empty() && !k.contains('<'));
                if key.is_none() {
                    out.notes.push((
                        action.loc.clone(),
                        "action abuseipdb: no API key in fail2ban's configuration; put it in the key file".into(),
                    ));
                }
                out.notify.push(Notify {
                    from: aname.clone(),
                    loc: action.loc.clone(),
                    hint: "abuseipdb".into(),
                    table: t,
                    secret: Some(("abuseipdb.key".into(), key.unwrap_or_default())),
                });
            }
            _ => match command(&aname, &opts) {
                Ok(t) => out.notify.push(Notify {
                    from: aname.clone(),
                    loc: action.loc.clone(),
                    hint: aname.clone(),
                    table: t,
                    secret: None,
                }),
                Err(msg) => out.lost.push((def_loc(&def, &action.loc), msg)),
            },
        }
    }
    if !out.enforcement.firewall {
        out.notes.push((
            action.loc.clone(),
            "no firewall action: fail2ban only notified; f2b bans in its nftables table as well"
                .into(),
        ));
    }
    Ok(out)
}

fn def_loc(def: &Definition, fallback: &Location) -> Location {
    def.cfg
        .files
        .first()
        .map(|f| Location::new(&f.path, 0))
        .unwrap_or_else(|| fallback.clone())
}

fn is_all_ports(p: &str) -> bool {
    let p = p.trim();
    p.is_empty()
        || matches!(
            p,
            "0:65535" | "1:65535" | "0-65535" | "1-65535" | "all" | "any" | "0:" | "1:"
        )
}

/// A command action: fail2ban's ban/unban commands with f2b's fields, run by `/bin/sh`.
fn command(
    aname: &str,
    opts: &std::collections::BTreeMap<String, Value>,
) -> Result<toml::Table, String> {
    let mut arms = String::new();
    for (event, key) in [
        ("start", "actionstart"),
        ("ban", "actionban"),
        ("unban", "actionunban"),
        ("stop", "actionstop"),
    ] {
        let Some(cmd) = opts
            .get(key)
            .map(|v| v.text.trim())
            .filter(|c| !c.is_empty())
        else {
            continue;
        };
        let mut text = cmd.to_string();
        for (tag, field) in FIELDS {
            text = text.replace(&format!("<{tag}>"), &format!("{{{field}}}"));
        }
        let left: Vec<String> = regex_tags(&text);
        if !left.is_empty() {
            return Err(format!(
                "action {aname}: {key} uses {} which f2b does not give to commands (it gives {})",
                left.join(" "),
                FIELDS
                    .iter()
                    .map(|(t, _)| format!("<{t}>"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
        arms.push_str(&format!("{event})\n{text}\n;;\n"));
    }
    if arms.is_empty() {
        return Err(format!("action {aname}: no actionban command"));
    }
    let script = format!("case \"$1\" in\n{arms}esac");
    let mut t = toml::Table::new();
    t.insert("type".into(), "command".into());
    t.insert(
        "command".into(),
        toml::Value::Array(
            ["/bin/sh", "-c", &script, "f2b-action", "{event}"]
                .iter()
                .map(|s| toml::Value::from(*s))
                .collect(),
        ),
    );
    Ok(t)
}

/// `<tag>`s left in a command (not shell redirections such as `<<EOF` or `< file`).
fn regex_tags(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('<') {
        let tail = &rest[i + 1..];
        match tail.find('>') {
            Some(e)
                if e > 0
                    && tail[..e]
                        .chars()
                        .all(|c| c.is_alphanumeric() || "-_".contains(c)) =>
            {
                let t = format!("<{}>", &tail[..e]);
                if !out.contains(&t) {
                    out.push(t);
                }
                rest = &tail[e + 1..];
            }
            _ => rest = tail,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(kind_of("iptables-multiport"), "firewall");
        assert_eq!(kind_of("nftables-allports"), "firewall");
        assert_eq!(kind_of("firewallcmd-ipset"), "firewall");
        assert_eq!(kind_of("sendmail-whois-lines"), "mail");
        assert_eq!(kind_of("mail-whois"), "mail");
        assert_eq!(kind_of("abuseipdb"), "abuseipdb");
        assert_eq!(kind_of("cloudflare"), "command");
        assert!(is_all_ports("0:65535") && !is_all_ports("ssh"));
    }

    #[test]
    fn commands_get_f2b_fields_or_say_why_not() {
        let loc = Location::new("action.d/x.conf", 1);
        let mut o = std::collections::BTreeMap::new();
        o.insert(
            "actionban".to_string(),
            Value::new(
                "curl -d ip=<ip> -d jail=<name> https://x < /dev/null",
                loc.clone(),
            ),
        );
        let t = command("x", &o).unwrap();
        let argv = t["command"].as_array().unwrap();
        assert!(argv[2]
            .as_str()
            .unwrap()
            .contains("ban)\ncurl -d ip={address} -d jail={jail}"));
        o.insert("actionunban".to_string(), Value::new("echo <matches>", loc));
        let e = command("x", &o).unwrap_err();
        assert!(e.contains("<matches>"), "{e}");
    }
}
