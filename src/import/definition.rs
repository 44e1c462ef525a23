//! fail2ban's filter and action files (`DefinitionInitConfigReader`): a `[Definition]`
//! section, an optional `[Init]` section whose values a jail may override with
//! `name[key=value]`, and `<tag>` substitution across all of them.

use std::collections::BTreeMap;
use std::path::Path;

use super::error::ImportError;
use super::ini::Value;
use super::interp::{substitute_tags, InterpError, Vars};
use super::reader::{Config, Scope};

/// Options a filter file defines (`FilterReader._configOpts`).
pub const FILTER_OPTS: &[&str] = &[
    "usedns",
    "prefregex",
    "ignoreregex",
    "failregex",
    "maxlines",
    "datepattern",
    "journalmatch",
];

/// Options an action file defines (`ActionReader._configOpts`).
pub const ACTION_OPTS: &[&str] = &[
    "actionstart",
    "actionstop",
    "actionflush",
    "actioncheck",
    "actionban",
    "actionprolong",
    "actionreban",
    "actionunban",
];

/// One `filter.d/NAME` or `action.d/NAME`, merged.
#[derive(Debug, Clone)]
pub struct Definition {
    pub name: String,
    pub cfg: Config,
}

impl Definition {
    /// Read `base/DIR/NAME.conf` and the rest of fail2ban's files for it; `None` when no file
    /// exists.
    pub fn read(
        base: &Path,
        dir: &str,
        name: &str,
        scope: Scope,
    ) -> Result<Option<Definition>, ImportError> {
        if name.contains('/') || name.starts_with('.') {
            return Ok(None);
        }
        let cfg = Config::read(base, &format!("{dir}/{name}"), scope)?;
        Ok((!cfg.files.is_empty()).then(|| Definition {
            name: name.to_string(),
            cfg,
        }))
    }

    /// `getOptions` then `getCombined`: the definition's options (those in `opts`, or all of
    /// `[Definition]` with `all`) and `[Init]`'s, with the jail's values `vars` winning in
    /// interpolation, the `name[key=value]` options `init` winning over `[Init]`, and every
    /// `<tag>` resolved. Options the jail itself sets (in `vars`) are left out, as fail2ban
    /// takes them from the jail.
    pub fn combined(
        &self,
        opts: &[&str],
        vars: &Vars,
        init: &Vars,
        all: bool,
    ) -> Result<BTreeMap<String, Value>, InterpError> {
        let mut pvars = vars.clone();
        pvars.extend(init.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut own = BTreeMap::new();
        for o in opts {
            if pvars.contains_key(*o) {
                continue;
            }
            if let Some(v) = self.cfg.get("Definition", o, &pvars)? {
                own.insert(o.to_string(), v);
            }
        }
        let mut init_all = init.clone();
        if let Some(sec) = self.cfg.sections.get("Init") {
            for o in sec.keys() {
                let Some(v) = self.cfg.get("Init", o, &Vars::new())? else {
                    continue;
                };
                if !o.starts_with("known/") {
                    init_all.insert(format!("known/{o}"), v.clone());
                }
                init_all.entry(o.clone()).or_insert(v);
            }
        }
        if all {
            if let Some(sec) = self.cfg.sections.get("Definition") {
                for o in sec.keys() {
                    if own.contains_key(o) {
                        continue;
                    }
                    if let Some(v) = self.cfg.get("Definition", o, &Vars::new())? {
                        own.insert(o.clone(), v);
                    }
                }
            }
        }
        let mut combined = own;
        combined.extend(init_all);
        // Conditional options (`opt?family=inet6`) are not substituted into others.
        let ignore: Vec<String> = combined
            .keys()
            .filter_map(|k| k.split_once('?').map(|(b, _)| b.to_string()))
            .collect();
        let lookup = |tag: &str| -> Option<String> {
            self.cfg
                .get_ex("Definition", tag, &pvars)
                .ok()
                .flatten()
                .map(|v| v.text)
        };
        substitute_tags(&combined, &ignore, &lookup)
    }
}

/// Split a multi-line option into its non-empty lines (fail2ban's list options).
pub fn lines(v: &Value) -> Vec<Value> {
    v.text
        .split('\n')
        .filter(|l| !l.trim().is_empty())
        .map(|l| Value::new(l, v.loc.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::location::Location;
    use std::fs;

    #[test]
    fn filter_with_modes_init_and_jail_vars() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("filter.d");
        fs::create_dir_all(&f).unwrap();
        fs::write(
            f.join("common.conf"),
            "[DEFAULT]\n_daemon = \\S*\n__prefix_line = <lt_<logtype>/__prefix_line>\n\
             [lt_file]\n__prefix_line = FILE\n[lt_journal]\n__prefix_line = JOURNAL\n",
        )
        .unwrap();
        fs::write(
            f.join("app.conf"),
            "[INCLUDES]\nbefore = common.conf\n[Definition]\n_daemon = app\n\
             failregex = ^%(__prefix_line)sfail from <HOST>$\n            <mdre-<mode>>\n\
             mdre-normal =\nmdre-extra = ^extra <HOST>$\nmode = normal\n\
             [Init]\njournalmatch = _SYSTEMD_UNIT=app.service\n",
        )
        .unwrap();
        fs::write(f.join("app.local"), "[Definition]\nignoreregex = ^ok\n").unwrap();
        let def = Definition::read(d.path(), "filter.d", "app", Scope::All)
            .unwrap()
            .unwrap();
        let loc = Location::new("jail.local", 3);
        let mut init = Vars::new();
        init.insert("mode".into(), Value::new("extra", loc.clone()));
        init.insert("logtype".into(), Value::new("journal", loc.clone()));
        let c = def
            .combined(FILTER_OPTS, &Vars::new(), &init, true)
            .unwrap();
        let fr: Vec<String> = lines(&c["failregex"]).into_iter().map(|v| v.text).collect();
        assert_eq!(fr, vec!["^JOURNALfail from <HOST>$", "^extra <HOST>$"]);
        assert_eq!(c["ignoreregex"].text, "^ok");
        assert_eq!(c["journalmatch"].text, "_SYSTEMD_UNIT=app.service");
        assert_eq!(c["known/journalmatch"].text, "_SYSTEMD_UNIT=app.service");
        assert_eq!(c["_daemon"].text, "app");
        // The jail's own prefix wins in interpolation; its failregex replaces the filter's.
        let mut vars = Vars::new();
        vars.insert("__prefix_line".into(), Value::new("", loc.clone()));
        vars.insert("failregex".into(), Value::new("^mine <HOST>$", loc));
        let c = def.combined(FILTER_OPTS, &vars, &init, false).unwrap();
        assert!(!c.contains_key("failregex"));
        let stock = Definition::read(d.path(), "filter.d", "app", Scope::ConfOnly)
            .unwrap()
            .unwrap();
        let c = stock
            .combined(FILTER_OPTS, &Vars::new(), &init, false)
            .unwrap();
        assert!(!c.contains_key("ignoreregex"));
    }
}
