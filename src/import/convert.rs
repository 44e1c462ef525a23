//! One enabled fail2ban jail → one f2b jail: where its entries come from (journal, files,
//! or f2b's own bans for recidive), which filter (f2b's same-named one in the mapped mode, a
//! copy with the local additions, or a translation), its counting keys, its enforcement and
//! its notifications — with a report line for everything that changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::actions::{self, Notify};
use super::filterfile;
use super::jails::{Effective, FilterUse, JailDef};
use super::journalmatch;
use super::ports;
use super::report::{Kind, Report};
use super::settings::{self, Keys};
use super::stock::{self, Checksums, Packaged};
use super::translate;
use super::ImportError;
use crate::filter::library::FilterLibrary;
use crate::location::Location;

/// Syslog files: on a systemd host rsyslog writes them from the journal, so f2b reads the
/// journal instead.
const SYSLOG_FILES: &[&str] = &[
    "/var/log/auth.log",
    "/var/log/secure",
    "/var/log/messages",
    "/var/log/syslog",
    "/var/log/daemon.log",
    "/var/log/user.log",
    "/var/log/kern.log",
    "/var/log/mail.log",
    "/var/log/mail.warn",
    "/var/log/mail.err",
    "/var/log/mail.info",
    "/var/log/maillog",
];

/// What the import knows while converting jails.
pub struct Context<'a> {
    pub from: &'a Path,
    /// f2b's built-in filters.
    pub lib: &'a FilterLibrary,
    pub sums: &'a Checksums,
    pub unit_dirs: &'a [PathBuf],
    /// This f2b reads log files (`source = "file"`).
    pub file_sources: bool,
    /// This f2b has `[action.NAME]`.
    pub actions: bool,
    /// Filter files to write, by name.
    pub filters: BTreeMap<String, String>,
}

impl Context<'_> {
    /// Register a filter file; same text → same name, else a new name.
    fn filter(&mut self, base: &str, jail: &str, text: String) -> String {
        for name in [base.to_string(), format!("{base}-{jail}")] {
            match self.filters.get(&name) {
                Some(t) if *t == text => return name,
                Some(_) => continue,
                None if self.lib.get(&name).is_some() => continue,
                None => {
                    self.filters.insert(name.clone(), text);
                    return name;
                }
            }
        }
        let mut n = 2;
        loop {
            let name = format!("{base}-{jail}-{n}");
            if !self.filters.contains_key(&name) {
                self.filters.insert(name.clone(), text);
                return name;
            }
            n += 1;
        }
    }
}

/// One f2b jail to write.
#[derive(Debug, Clone)]
pub struct OutJail {
    pub name: String,
    /// The fail2ban jail's name and where it was enabled.
    pub from: String,
    pub loc: Location,
    /// enabled, source, filter, mode, matches, logpath (in this order).
    pub source: Vec<(&'static str, toml::Value)>,
    pub keys: Keys,
    pub notify: Vec<Notify>,
    /// Why the jail is written disabled, if it is.
    pub left_out: Option<String>,
}

/// An f2b jail name for a fail2ban one: `[A-Za-z0-9_-]`, at most 32 characters.
pub fn jail_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(32)
        .collect();
    if s.is_empty() {
        "jail".into()
    } else {
        s
    }
}

/// Where the jail's entries come from.
enum Origin {
    Journal,
    Files(Vec<String>),
}

fn origin(jail: &JailDef, report: &mut Report, subject: &str) -> Origin {
    let backend = jail.backend();
    if backend.starts_with("systemd") {
        if backend.contains('[') {
            report.add(
                Kind::Mapped,
                subject,
                jail.opts.get("backend").map(|v| &v.loc),
                format!("backend {backend}: f2b reads the system journal (f2bd --journal-dir for another)"),
            );
        }
        return Origin::Journal;
    }
    let paths: Vec<String> = jail
        .opts
        .get("logpath")
        .map(|v| {
            v.text
                .lines()
                .map(|l| {
                    let l = l.trim();
                    match l.rsplit_once(' ') {
                        Some((p, "head" | "tail")) => p.trim().to_string(),
                        _ => l.to_string(),
                    }
                })
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let loc = jail.opts.get("logpath").map(|v| &v.loc);
    if paths.iter().all(|p| SYSLOG_FILES.contains(&p.as_str())) {
        report.add(
            Kind::Mapped,
            subject,
            loc,
            format!(
                "{}: syslog written from the journal; f2b reads the journal",
                if paths.is_empty() {
                    "no logpath".to_string()
                } else {
                    paths.join(", ")
                }
            ),
        );
        return Origin::Journal;
    }
    Origin::Files(paths)
}

/// The stock filter as f2b has it, or why not.
enum Plan {
    Stock,
    /// f2b's filter plus these (fail2ban) patterns.
    Derived(Vec<super::ini::Value>, Vec<super::ini::Value>),
    Translate(String),
}

fn additions(
    stock: &[super::ini::Value],
    eff: &[super::ini::Value],
) -> Option<Vec<super::ini::Value>> {
    let mut it = eff.iter();
    for s in stock {
        it.by_ref().find(|e| e.text == s.text)?;
    }
    let kept: Vec<&str> = stock.iter().map(|s| s.text.as_str()).collect();
    Some(
        eff.iter()
            .filter(|e| !kept.contains(&e.text.as_str()))
            .cloned()
            .collect(),
    )
}

/// Whether the stock filter stands, and a caveat when that could not be verified.
fn plan(ctx: &Context, f: &FilterUse) -> (Plan, Option<String>) {
    if ctx.lib.get(&f.name).is_none() {
        return (
            Plan::Translate(format!("f2b has no filter {:?}", f.name)),
            None,
        );
    }
    let Some(stock) = &f.stock else {
        let why = format!("filter.d/{}.conf is not fail2ban's", f.name);
        return (Plan::Translate(why), None);
    };
    let caveat = match ctx.sums.verify(ctx.from, &f.stock_files) {
        Packaged::Modified(file) => {
            let why = format!(
                "{file} differs from the packaged file (changes kept in filter.d/{}.local would have left f2b's own filter in place)",
                f.name
            );
            return (Plan::Translate(why), None);
        }
        Packaged::Unknown(file) => Some(format!(
            "{file} could not be compared with the packaged file (no dpkg record): taken as fail2ban's stock filter"
        )),
        Packaged::Yes => None,
    };
    (stock_plan(stock, &f.effective), caveat)
}

fn stock_plan(stock: &Effective, eff: &Effective) -> Plan {
    if eff.same_regexes(stock) {
        return Plan::Stock;
    }
    let same_pref =
        eff.prefregex.as_ref().map(|v| &v.text) == stock.prefregex.as_ref().map(|v| &v.text);
    match (
        same_pref,
        additions(&stock.failregex, &eff.failregex),
        additions(&stock.ignoreregex, &eff.ignoreregex),
    ) {
        (true, Some(fail), Some(ignore)) => Plan::Derived(fail, ignore),
        _ => Plan::Translate("local changes replace stock patterns".into()),
    }
}

/// Convert one enabled jail.
pub fn jail(
    ctx: &mut Context,
    jail: &JailDef,
    report: &mut Report,
) -> Result<OutJail, ImportError> {
    let name = jail_name(&jail.name);
    let subject = format!("jail {name}");
    let mut out = OutJail {
        name: name.clone(),
        from: jail.name.clone(),
        loc: jail.loc.clone(),
        source: Vec::new(),
        keys: Keys::default(),
        notify: Vec::new(),
        left_out: None,
    };
    if name != jail.name {
        report.add(Kind::Mapped, &subject, Some(&jail.loc), format!("fail2ban's jail {:?} is named {name} (f2b jail names are [A-Za-z0-9_-], at most 32)", jail.name));
    }
    out.source.push(("enabled", true.into()));
    out.keys = settings::convert(&|o| jail.get(o).ok().flatten(), false);
    for (loc, n) in &out.keys.notes {
        report.add(Kind::Mapped, &subject, Some(loc), n);
    }
    for (loc, n) in &out.keys.lost {
        report.lost(&subject, Some(loc), n);
    }
    let acts = actions::plan(jail, ctx.from)?;
    ports::enforcement(&acts.enforcement, &mut out.keys, jail);
    for (loc, n) in &acts.notes {
        report.add(Kind::Mapped, &subject, Some(loc), n);
    }
    for (loc, n) in &acts.lost {
        report.lost(&subject, Some(loc), n);
    }
    for n in acts.notify {
        if ctx.actions {
            report.add(
                Kind::Mapped,
                &subject,
                Some(&n.loc),
                format!(
                    "action {} → f2b {} action",
                    n.from,
                    n.table["type"].as_str().unwrap_or("?")
                ),
            );
            out.notify.push(n);
        } else {
            report.lost(
                &subject,
                Some(&n.loc),
                format!(
                    "action {}: this f2b has no {} actions ([action.NAME], issue 16)",
                    n.from,
                    n.table["type"].as_str().unwrap_or("?")
                ),
            );
        }
    }
    let Some(f) = &jail.filter else {
        out.left_out = Some("the jail has no filter".into());
        report.lost(&subject, Some(&jail.loc), "the jail has no filter");
        return Ok(out);
    };
    if f.name == "recidive" {
        out.source.push(("source", "bans".into()));
        report.add(Kind::Mapped, &subject, Some(&f.spec.loc), "recidive over fail2ban's log → f2b's recidive over its own ban history (source = \"bans\", every other jail)");
        return Ok(out);
    }
    let origin = origin(jail, report, &subject);
    if let Origin::Files(paths) = &origin {
        if !ctx.file_sources {
            let msg = format!(
                "logpath {}: this f2b reads the journal only (log files as a source: issue 13)",
                paths.join(", ")
            );
            report.lost(&subject, jail.opts.get("logpath").map(|v| &v.loc), &msg);
            out.left_out = Some(msg);
        }
    }
    // The program name the filter's syslog prefix expects (`_daemon`), when it is a name
    // rather than a regex: the journal's SYSLOG_IDENTIFIER.
    let daemon = f
        .combined
        .get("_daemon")
        .map(|v| v.text.trim().to_string())
        .filter(|d| {
            !d.is_empty()
                && d.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
        });
    let mut services = vec![jail.name.clone(), f.name.clone()];
    services.extend(daemon.clone());
    let journal = matches!(origin, Origin::Journal);
    let (plan, caveat) = plan(ctx, f);
    if let Some(c) = caveat {
        report.add(Kind::Mapped, &subject, Some(&f.spec.loc), c);
    }
    match plan {
        p @ (Plan::Stock | Plan::Derived(..)) => {
            let (fmode, note) = stock::map_mode(ctx.lib, &f.name, f.mode());
            let mut fname = f.name.clone();
            if let Plan::Derived(fail, ignore) = p {
                match derived(ctx, jail, f, &fail, &ignore) {
                    Ok(n) => {
                        report.add(Kind::Translated, &subject, Some(&f.spec.loc), format!("filter {} with local additions ({} failregex, {} ignoreregex) → filters/{n}.toml, f2b's {} plus them", f.name, fail.len(), ignore.len(), f.name));
                        fname = n;
                    }
                    Err(problems) => {
                        for (loc, m) in problems {
                            report.lost(&subject, Some(&loc), m);
                        }
                        out.left_out = Some(format!(
                            "filter {}: local additions cannot be translated",
                            f.name
                        ));
                    }
                }
            } else {
                report.add(
                    Kind::Imported,
                    &subject,
                    Some(&jail.loc),
                    format!(
                        "enabled; filter {} → f2b's {}{}",
                        f.name,
                        f.name,
                        fmode
                            .as_deref()
                            .map(|m| format!(" (mode {m})"))
                            .unwrap_or_default()
                    ),
                );
            }
            if let Some(n) = note {
                report.add(Kind::Mapped, &subject, Some(&f.spec.loc), n);
            }
            out.source.push(("filter", fname.into()));
            let default_mode = ctx.lib.get(&f.name).and_then(|d| d.default_mode.clone());
            if let Some(m) = fmode.filter(|m| Some(m) != default_mode.as_ref()) {
                out.source.push(("mode", m.into()));
            }
            if journal {
                let stock_jm = f
                    .stock
                    .as_ref()
                    .and_then(|s| s.journalmatch.as_ref())
                    .map(|v| &v.text);
                if let Some(jm) = f
                    .effective
                    .journalmatch
                    .as_ref()
                    .filter(|v| Some(&v.text) != stock_jm)
                {
                    match journalmatch::translate(&jm.text, &services, ctx.unit_dirs) {
                        Ok(m) if m.terms.is_empty() => report.lost(
                            &subject,
                            Some(&jm.loc),
                            format!(
                                "journalmatch {:?} names the program only (forgeable) and no \
                                 unit file of the service was found",
                                jm.text
                            ),
                        ),
                        Ok(m) => {
                            for n in &m.notes {
                                report.add(Kind::Mapped, &subject, Some(&jm.loc), n);
                            }
                            out.source.push(("matches", strings(&m.terms)));
                        }
                        Err(e) => report.lost(&subject, Some(&jm.loc), e),
                    }
                }
            }
        }
        Plan::Translate(why) => {
            if ctx.lib.get(&f.name).is_some() {
                report.add(
                    Kind::Mapped,
                    &subject,
                    Some(&f.spec.loc),
                    format!("filter {}: {why}: translated instead of f2b's own", f.name),
                );
            }
            let eff: &Effective = &f.effective;
            let mut p = translate::patterns(&f.def.cfg, eff);
            for r in filterfile::validate(&mut p) {
                p.problems.push((f.spec.loc.clone(), r));
            }
            let mut matches = Vec::new();
            if journal {
                let jm = eff
                    .journalmatch
                    .as_ref()
                    .map(|v| v.text.clone())
                    .unwrap_or_else(|| {
                        daemon
                            .as_ref()
                            .map(|d| format!("SYSLOG_IDENTIFIER={d}"))
                            .unwrap_or_default()
                    });
                let loc = eff
                    .journalmatch
                    .as_ref()
                    .map(|v| v.loc.clone())
                    .unwrap_or_else(|| f.spec.loc.clone());
                match journalmatch::translate(&jm, &services, ctx.unit_dirs) {
                    Ok(m) if m.terms.is_empty() => p.problems.push((
                        loc,
                        format!(
                            "filter {}: its entries can only be told by the name the program \
                             gives itself, which any local user can forge, and no unit file of \
                             the service was found; set matches = [\"_SYSTEMD_UNIT=….service\"]",
                            f.name
                        ),
                    )),
                    Ok(m) => {
                        for n in &m.notes {
                            report.add(Kind::Mapped, &subject, Some(&loc), n);
                        }
                        matches = m.terms;
                    }
                    Err(_) => p.problems.push((loc, format!("filter {}: no journalmatch and no program name (_daemon) to read its entries by; set matches", f.name))),
                }
            }
            for (loc, n) in &p.notes {
                report.add(Kind::Mapped, &subject, Some(loc), n);
            }
            let header = vec![
                format!(
                    "Translated by f2b import-fail2ban from fail2ban's filter {} ({why}).",
                    f.name
                ),
                format!(
                    "Read from: {}",
                    f.def
                        .cfg
                        .files
                        .iter()
                        .map(|x| x.path.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ];
            let base = if ctx.lib.get(&f.name).is_some() {
                format!("{}-fail2ban", f.name)
            } else {
                f.name.clone()
            };
            if p.problems.is_empty() {
                let text = filterfile::translated(&base, &header, &matches, &p);
                match filterfile::check(&base, &text) {
                    Ok(_) => {
                        let n = ctx.filter(&base, &name, text);
                        report.add(Kind::Translated, &subject, Some(&f.spec.loc), format!("filter {} → filters/{n}.toml ({} failregex, {} ignoreregex, {} pidregex; {why})", f.name, p.failregex.len(), p.ignoreregex.len(), p.pidregex.len()));
                        out.source.push(("filter", n.into()));
                    }
                    Err(e) => p
                        .problems
                        .push((f.spec.loc.clone(), format!("the translated filter: {e}"))),
                }
            }
            if !p.problems.is_empty() {
                for (loc, m) in &p.problems {
                    report.lost(&subject, Some(loc), m);
                }
                let mut todo = filterfile::translated(&base, &header, &matches, &p);
                for (loc, m) in &p.problems {
                    todo.push_str(&format!(
                        "# NOT TRANSLATED ({loc}): {}\n",
                        m.replace('\n', " ")
                    ));
                }
                ctx.filters.insert(format!("{base}.toml.todo"), todo);
                out.left_out.get_or_insert(format!(
                    "filter {} cannot be translated (see filters/{base}.toml.todo)",
                    f.name
                ));
            }
        }
    }
    if let Origin::Files(paths) = origin {
        out.source.push(("source", "file".into()));
        out.source.push(("logpath", strings(&paths)));
    }
    Ok(out)
}

fn derived(
    ctx: &mut Context,
    jail: &JailDef,
    f: &FilterUse,
    fail: &[super::ini::Value],
    ignore: &[super::ini::Value],
) -> Result<String, Vec<(Location, String)>> {
    let add = Effective {
        prefregex: f.effective.prefregex.clone(),
        failregex: fail.to_vec(),
        ignoreregex: ignore.to_vec(),
        ..Effective::default()
    };
    let mut p = translate::patterns(&f.def.cfg, &add);
    if fail.is_empty() {
        // Only ignoreregex were added: "no failregex" is not a problem here.
        p.problems.retain(|(_, m)| !m.contains("no failregex"));
    }
    for r in filterfile::validate(&mut p) {
        p.problems.push((f.spec.loc.clone(), r));
    }
    if !p.problems.is_empty() {
        return Err(p.problems);
    }
    let header = vec![format!(
        "f2b's {} with the additions of fail2ban's local files, by f2b import-fail2ban.",
        f.name
    )];
    let text = filterfile::derived(&f.name, &header, &p.failregex, &p.ignoreregex)
        .map_err(|e| vec![(f.spec.loc.clone(), e)])?;
    let name = format!("{}-local", f.name);
    filterfile::check(&name, &text).map_err(|e| vec![(f.spec.loc.clone(), e)])?;
    Ok(ctx.filter(&name, &jail_name(&jail.name), text))
}

fn strings(v: &[String]) -> toml::Value {
    toml::Value::Array(v.iter().map(|s| toml::Value::from(s.as_str())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jail_names() {
        assert_eq!(jail_name("nginx-http-auth"), "nginx-http-auth");
        assert_eq!(jail_name("my.app jail"), "my-app-jail");
        assert_eq!(jail_name(&"x".repeat(40)).len(), 32);
    }
}
