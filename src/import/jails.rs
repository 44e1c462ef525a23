//! fail2ban's jails (`JailsReader`, `JailReader`): every section of the merged `jail.*`
//! files is a jail; an enabled one reads its filter (`filter = name[key=value]`), whose
//! options become `known/…` in the jail, then the jail's own options, which win over the
//! filter's.

use std::collections::BTreeMap;
use std::path::Path;

use super::definition::{lines, Definition, FILTER_OPTS};
use super::error::ImportError;
use super::ini::Value;
use super::interp::{extract_options, InterpError, Vars};
use super::reader::{Config, Scope};
use crate::location::Location;

/// The jail options fail2ban reads (`JailReader._configOpts`), after the filter's.
const JAIL_OPTS: &[&str] = &[
    "enabled",
    "backend",
    "maxretry",
    "maxmatches",
    "findtime",
    "bantime",
    "bantime.increment",
    "bantime.factor",
    "bantime.formula",
    "bantime.multipliers",
    "bantime.maxtime",
    "bantime.rndtime",
    "bantime.overalljails",
    "ignorecommand",
    "ignoreself",
    "ignoreip",
    "ignorecache",
    "filter",
    "logtimezone",
    "logencoding",
    "logpath",
    "action",
];

/// The version fail2ban's own `%(fail2ban_version)s` stands for here.
const FAIL2BAN_VERSION: &str = "1.0.2";

/// The filter of a jail, as fail2ban would run it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effective {
    pub prefregex: Option<Value>,
    pub failregex: Vec<Value>,
    pub ignoreregex: Vec<Value>,
    pub journalmatch: Option<Value>,
    pub maxlines: Option<Value>,
    pub datepattern: Option<Value>,
}

impl Effective {
    fn from(jail: &BTreeMap<String, Value>, filter: &BTreeMap<String, Value>) -> Effective {
        let pick = |k: &str| jail.get(k).or_else(|| filter.get(k)).cloned();
        let list = |k: &str| pick(k).map(|v| lines(&v)).unwrap_or_default();
        Effective {
            prefregex: pick("prefregex").filter(|v| !v.text.trim().is_empty()),
            failregex: list("failregex"),
            ignoreregex: list("ignoreregex"),
            journalmatch: pick("journalmatch").filter(|v| !v.text.trim().is_empty()),
            maxlines: pick("maxlines"),
            datepattern: pick("datepattern"),
        }
    }

    /// The same regexes (text only, locations aside).
    pub fn same_regexes(&self, other: &Effective) -> bool {
        let t = |v: &[Value]| v.iter().map(|x| x.text.clone()).collect::<Vec<_>>();
        self.prefregex.as_ref().map(|v| &v.text) == other.prefregex.as_ref().map(|v| &v.text)
            && t(&self.failregex) == t(&other.failregex)
            && t(&self.ignoreregex) == t(&other.ignoreregex)
    }
}

/// A jail's filter.
#[derive(Debug, Clone)]
pub struct FilterUse {
    /// `filter = …` as written (interpolated) and where.
    pub spec: Value,
    pub name: String,
    pub def: Definition,
    /// The filter's options after substitution (all of `[Definition]` and `[Init]`).
    pub combined: BTreeMap<String, Value>,
    /// What runs, jail overrides included.
    pub effective: Effective,
    /// The same from the distribution's `.conf` files alone, without `.local` files or the
    /// jail's own regexes (`None` when the filter has no `.conf`).
    pub stock: Option<Effective>,
    /// The files that make up the stock reading.
    pub stock_files: Vec<String>,
}

impl FilterUse {
    /// The mode fail2ban runs the filter in (`mode` of `name[mode=…]`, else the filter's).
    pub fn mode(&self) -> Option<&str> {
        self.combined
            .get("mode")
            .map(|v| v.text.trim())
            .filter(|m| !m.is_empty())
    }
}

/// An enabled jail, read.
#[derive(Debug, Clone)]
pub struct JailDef {
    pub name: String,
    /// Where `enabled` was set to true.
    pub loc: Location,
    pub filter: Option<FilterUse>,
    /// The jail's options (interpolated): those fail2ban reads for a jail that are set.
    pub opts: BTreeMap<String, Value>,
    /// The jail's section (with `known/…` from the filter), to read more options from.
    pub cfg: Config,
}

impl JailDef {
    /// An option of the jail (any name, such as `port` or `banaction`), interpolated.
    pub fn get(&self, option: &str) -> Result<Option<Value>, InterpError> {
        if let Some(v) = self.opts.get(option) {
            return Ok(Some(v.clone()));
        }
        self.cfg.get(&self.name, option, &Vars::new())
    }

    pub fn backend(&self) -> String {
        self.opts
            .get("backend")
            .map(|v| v.text.trim().to_string())
            .unwrap_or_else(|| "auto".into())
    }
}

/// What reading one jail section gave.
#[derive(Debug, Clone)]
pub enum JailRead {
    Disabled,
    Enabled(Box<JailDef>),
    /// fail2ban would skip it too: its configuration is wrong.
    Broken {
        loc: Location,
        msg: String,
    },
}

/// fail2ban's `_as_bool`.
pub fn as_bool(v: &str) -> bool {
    matches!(
        v.trim().to_lowercase().as_str(),
        "1" | "on" | "true" | "yes"
    )
}

/// Read `jail.*` under `base`, with fail2ban's built-in defaults.
pub fn read_config(base: &Path) -> Result<Config, ImportError> {
    let mut cfg = Config::read(base, "jail", Scope::All)?;
    let builtin = Location::new("(fail2ban built-in)", 0);
    for (k, v) in [
        ("fail2ban_version", FAIL2BAN_VERSION.to_string()),
        ("fail2ban_confpath", base.display().to_string()),
    ] {
        cfg.defaults
            .entry(k.into())
            .or_insert_with(|| Value::new(v, builtin.clone()));
    }
    Ok(cfg)
}

/// fail2ban matches a syslog line rebuilt from the journal entry; f2b matches `MESSAGE`
/// alone: the syslog prefix `common.conf` defines is empty here (a filter that adds to it,
/// such as sendmail's queue id, keeps its addition).
fn message_only(def: &mut Definition) {
    def.cfg.defaults.insert(
        "__prefix_line".into(),
        Value::new("", Location::new("(f2b matches MESSAGE only)", 0)),
    );
}

fn var(text: &str, loc: &Location) -> Value {
    Value::new(text, loc.clone())
}

/// Read one jail as `JailReader.getOptions` does.
pub fn read_jail(cfg: &Config, base: &Path, name: &str) -> Result<JailRead, ImportError> {
    let broken = |e: InterpError| JailRead::Broken {
        loc: e.loc,
        msg: e.msg,
    };
    let mut first = Vars::new();
    for o in ["enabled", "backend", "filter"] {
        match cfg.get(name, o, &Vars::new()) {
            Ok(Some(v)) => {
                first.insert(o.into(), v);
            }
            Ok(None) => {}
            Err(e) => return Ok(broken(e)),
        }
    }
    let Some(enabled) = first.get("enabled").filter(|v| as_bool(&v.text)) else {
        return Ok(JailRead::Disabled);
    };
    let loc = enabled.loc.clone();
    let backend = first
        .get("backend")
        .map(|v| v.text.trim().to_string())
        .unwrap_or_else(|| "auto".into());
    let mut cfg = cfg.clone();
    let mut filter = None;
    let spec = first.get("filter").filter(|v| !v.text.trim().is_empty());
    if let Some(spec) = spec {
        let (fname, fopts) = match extract_options(&spec.text) {
            Ok(x) => x,
            Err(msg) => {
                return Ok(JailRead::Broken {
                    loc: spec.loc.clone(),
                    msg: format!("filter: {msg}"),
                })
            }
        };
        let Some(mut def) = Definition::read(base, "filter.d", &fname, Scope::All)? else {
            return Ok(JailRead::Broken {
                loc: spec.loc.clone(),
                msg: format!("filter {fname:?}: no filter.d/{fname}.conf or .local"),
            });
        };
        message_only(&mut def);
        let mut init: Vars = fopts
            .iter()
            .map(|(k, v)| (k.clone(), var(v, &spec.loc)))
            .collect();
        if !init.contains_key("logtype") && !def.cfg.has_own("Definition", "logtype") {
            let lt = if backend.starts_with("systemd") {
                "journal"
            } else {
                "file"
            };
            init.insert("logtype".into(), var(lt, &spec.loc));
        }
        let vars1 = first.clone();
        let combined = match def.combined(FILTER_OPTS, &vars1, &init, true) {
            Ok(c) => c,
            Err(e) => return Ok(broken(e)),
        };
        // The filter's options become `known/…` of the jail.
        let sec = cfg.sections.entry(name.to_string()).or_default();
        for (k, v) in &combined {
            if !k.starts_with("known/") {
                sec.insert(format!("known/{k}"), v.clone());
            }
        }
        let mut stock_def = Definition::read(base, "filter.d", &fname, Scope::ConfOnly)?;
        if let Some(sd) = stock_def.as_mut() {
            message_only(sd);
        }
        let stock = match &stock_def {
            Some(sd) => match sd.combined(FILTER_OPTS, &vars1, &init, false) {
                Ok(c) => Some(Effective::from(&BTreeMap::new(), &c)),
                Err(_) => None,
            },
            None => None,
        };
        filter = Some((spec.clone(), fname, def, combined, init, stock, stock_def));
    }
    let mut opts = BTreeMap::new();
    for o in JAIL_OPTS.iter().chain(FILTER_OPTS) {
        match cfg.get(name, o, &Vars::new()) {
            Ok(Some(v)) => {
                opts.insert(o.to_string(), v);
            }
            Ok(None) => {}
            Err(e) => return Ok(broken(e)),
        }
    }
    let filter = match filter {
        None => None,
        Some((spec, fname, def, combined, init, stock, stock_def)) => {
            let vars2: Vars = opts.clone();
            let second = match def.combined(FILTER_OPTS, &vars2, &init, false) {
                Ok(c) => c,
                Err(e) => return Ok(broken(e)),
            };
            let jail_own: BTreeMap<String, Value> = opts
                .iter()
                .filter(|(k, _)| FILTER_OPTS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Some(FilterUse {
                spec,
                name: fname,
                effective: Effective::from(&jail_own, &second),
                combined,
                def,
                stock,
                stock_files: stock_def
                    .map(|d| d.cfg.files.iter().map(|f| f.path.clone()).collect())
                    .unwrap_or_default(),
            })
        }
    };
    Ok(JailRead::Enabled(Box::new(JailDef {
        name: name.to_string(),
        loc,
        filter,
        opts,
        cfg,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn jail_overrides_and_known_filter_values() {
        let d = tempfile::tempdir().unwrap();
        let b = d.path();
        fs::create_dir_all(b.join("filter.d")).unwrap();
        fs::write(
            b.join("filter.d/app.conf"),
            "[Definition]\nfailregex = ^fail <HOST>$\n[Init]\njournalmatch = _SYSTEMD_UNIT=app.service\n",
        )
        .unwrap();
        fs::write(
            b.join("jail.conf"),
            "[DEFAULT]\nmode = normal\nfilter = %(__name__)s[mode=%(mode)s]\nbantime = 10m\n\
             [app]\nport = 8080\n[off]\nenabled = false\n",
        )
        .unwrap();
        fs::write(
            b.join("jail.local"),
            "[app]\nenabled = yes\nfailregex = %(known/failregex)s\n            ^also <HOST>$\n",
        )
        .unwrap();
        let cfg = read_config(b).unwrap();
        assert!(matches!(
            read_jail(&cfg, b, "off").unwrap(),
            JailRead::Disabled
        ));
        let JailRead::Enabled(j) = read_jail(&cfg, b, "app").unwrap() else {
            panic!()
        };
        assert_eq!(j.loc.line, 2);
        let f = j.filter.as_ref().unwrap();
        assert_eq!(f.name, "app");
        assert_eq!(f.mode(), Some("normal"));
        let fr: Vec<&str> = f
            .effective
            .failregex
            .iter()
            .map(|v| v.text.as_str())
            .collect();
        assert_eq!(fr, vec!["^fail <HOST>$", "^also <HOST>$"]);
        assert_eq!(
            f.effective.journalmatch.as_ref().unwrap().text,
            "_SYSTEMD_UNIT=app.service"
        );
        assert!(!f.effective.same_regexes(f.stock.as_ref().unwrap()));
        assert_eq!(j.get("port").unwrap().unwrap().text, "8080");
        assert_eq!(j.opts["bantime"].text, "10m");
    }
}
