//! `f2b import-fail2ban`: turn a fail2ban setup into f2b's, bans included.
//!
//! fail2ban's files are read by fail2ban's own rules ([`reader`]: `jail.conf`,
//! `jail.d/*.conf`, `jail.local`, `jail.d/*.local`, `[INCLUDES]`; [`interp`]: `%(name)s`,
//! `%(known/name)s`, `<tag>`; [`jails`], [`definition`]: jails, filters and actions with
//! their `name[key=value]` options; [`duration`]: `1d12h`-style times). Each enabled jail is
//! [converted](convert): stock filters map to f2b's same-named filters and [modes](stock),
//! custom or modified ones are [translated](translate) ([`pyregex`], [`tags`]) into
//! [filter files](filterfile), [actions] become nftables bans, mail, abuseipdb or command
//! actions ([`ports`] from the firewall ones), [`settings`] carry the counting keys and
//! [`journalmatch`] the journal matches.
//! The [database] becomes f2b state. Everything is said in the [report].

pub mod actions;
pub mod convert;
pub mod database;
pub mod definition;
pub mod duration;
pub mod error;
pub mod filterfile;
pub mod ini;
pub mod interp;
pub mod jails;
pub mod journalmatch;
pub mod output;
pub mod ports;
pub mod pyregex;
pub mod reader;
pub mod report;
pub mod settings;
pub mod stock;
pub mod tags;
pub mod translate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::ImportError;

use crate::config::{self, LoadOptions};
use crate::filter::library::FilterLibrary;
use crate::store::Store;
use interp::Vars;
use jails::JailRead;
use report::{Kind, Report};

/// fail2ban's default database.
pub const DEFAULT_DB: &str = "/var/lib/fail2ban/fail2ban.sqlite3";

/// `f2b import-fail2ban`: read fail2ban's configuration (and database), write f2b's.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// fail2ban's configuration directory.
    #[arg(long, value_name = "DIR", default_value = "/etc/fail2ban")]
    pub from: PathBuf,
    /// Where to write f2b.toml (and filters/ when a filter is translated).
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    /// fail2ban's database, whose bans and ban history are imported (default: dbfile of
    /// fail2ban.conf, else /var/lib/fail2ban/fail2ban.sqlite3).
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// f2b's state directory to import the bans into (with --db; default /var/lib/f2b).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Print the report only; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// What the environment provides (tests change it).
#[derive(Debug, Clone)]
pub struct Options {
    /// Where `NAME.service` files are looked for.
    pub unit_dirs: Vec<PathBuf>,
    /// dpkg's status file (checksums of the packaged fail2ban files).
    pub dpkg_status: PathBuf,
    /// Now, µs since the epoch.
    pub now_us: u64,
    /// f2b's history age (the written configuration keeps the default).
    pub history_max_age: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            unit_dirs: journalmatch::default_unit_dirs(),
            dpkg_status: PathBuf::from(stock::DPKG_STATUS),
            now_us: crate::engine::now_us(),
            history_max_age: Duration::from_secs(30 * 86_400),
        }
    }
}

/// The result of an import.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub report: Report,
    pub output: output::Output,
    /// f2b jails written enabled.
    pub enabled: Vec<String>,
    pub db: Option<database::Imported>,
    /// The jails `f2b check` finds enabled in what was written (`None`: dry run, or it
    /// failed, which the report says).
    pub checked: Option<Vec<String>>,
}

/// Run the command: print the report; exit status 1 when something enabled is not carried
/// over.
pub fn run(args: &ImportArgs, w: &mut dyn std::io::Write) -> Result<u8, ImportError> {
    let out = import(args, &Options::default())?;
    w.write_all(out.report.render().as_bytes())
        .map_err(ImportError::Output)?;
    Ok(u8::from(out.report.failed()))
}

/// Does this f2b's configuration have this jail key (a feature built in another branch)?
fn supports(key: &str) -> bool {
    config::JAIL_KEYS.contains(&key)
}

/// f2b's built-in filters (loaded once per process).
fn builtin_library() -> Result<&'static FilterLibrary, ImportError> {
    static LIB: std::sync::OnceLock<FilterLibrary> = std::sync::OnceLock::new();
    if let Some(l) = LIB.get() {
        return Ok(l);
    }
    let l = FilterLibrary::load(&[]).map_err(|e| ImportError::Usage(e.to_string()))?;
    Ok(LIB.get_or_init(|| l))
}

/// Import without printing.
pub fn import(args: &ImportArgs, opts: &Options) -> Result<Outcome, ImportError> {
    let from = args.from.as_path();
    if !from.join("jail.conf").is_file() && !from.join("jail.local").is_file() {
        return Err(ImportError::Usage(format!(
            "{}: no jail.conf or jail.local: not a fail2ban configuration directory",
            from.display()
        )));
    }
    let mut report = Report::default();
    let cfg = jails::read_config(from)?;
    let lib = builtin_library()?;
    let sums = stock::Checksums::load(&opts.dpkg_status);
    let mut ctx = convert::Context {
        from,
        lib,
        sums: &sums,
        unit_dirs: &opts.unit_dirs,
        // `source = "file"` + `logpath` (issue 13), `[action.NAME]` + `actions` (issue 16).
        file_sources: supports("logpath"),
        actions: supports("actions"),
        filters: BTreeMap::new(),
    };
    let defaults = settings::convert(
        &|o| cfg.get("DEFAULT", o, &Vars::new()).ok().flatten(),
        true,
    );
    for (loc, n) in &defaults.notes {
        report.add(Kind::Mapped, "[DEFAULT]", Some(loc), n);
    }
    for (loc, n) in &defaults.lost {
        report.lost("[DEFAULT]", Some(loc), n);
    }
    let mut jails = Vec::new();
    let mut disabled = 0;
    for section in cfg.user_sections() {
        match jails::read_jail(&cfg, from, section)? {
            JailRead::Disabled => disabled += 1,
            JailRead::Broken { loc, msg } => report.lost(
                format!("jail {section}"),
                Some(&loc),
                format!("fail2ban would skip this jail too: {msg}"),
            ),
            JailRead::Enabled(j) => {
                let mut o = convert::jail(&mut ctx, &j, &mut report)?;
                let base = o.name.clone();
                let mut i = 2;
                while jails.iter().any(|x: &convert::OutJail| x.name == o.name) {
                    o.name = format!("{}-{i}", &base[..base.len().min(29)]);
                    i += 1;
                }
                jails.push(o);
            }
        }
    }
    if let Some(v) = cfg.get("DEFAULT", "usedns", &Vars::new()).ok().flatten() {
        let u = v.text.trim();
        if !jails.is_empty() && !matches!(u, "no" | "raw") {
            report.add(
                Kind::Mapped,
                "[DEFAULT]",
                Some(&v.loc),
                format!("usedns = {u}: f2b resolves no host names in log lines; <HOST> matches addresses"),
            );
        }
    }
    // What [DEFAULT] said once is not repeated for every jail.
    let said: Vec<(Option<crate::location::Location>, String)> = report
        .items
        .iter()
        .filter(|i| i.subject == "[DEFAULT]")
        .map(|i| (i.loc.clone(), i.msg.clone()))
        .collect();
    report
        .items
        .retain(|i| i.subject == "[DEFAULT]" || !said.contains(&(i.loc.clone(), i.msg.clone())));
    if disabled > 0 {
        report.add(
            Kind::NotImported,
            "disabled jails",
            None,
            format!("{disabled} jail(s) of fail2ban's files are not enabled: not imported"),
        );
    }
    let out = output::render(from, &args.to, &defaults, &jails, &ctx.filters);
    let enabled: Vec<String> = jails
        .iter()
        .filter(|j| j.left_out.is_none())
        .map(|j| j.name.clone())
        .collect();
    let mut outcome = Outcome {
        output: out,
        enabled,
        ..Outcome::default()
    };
    if args.db.is_some() || args.state_dir.is_some() {
        outcome.db = import_db(args, opts, &jails, &defaults, &mut report)?;
    }
    if args.dry_run {
        report
            .summary
            .push("Dry run: nothing was written.".to_string());
    } else {
        output::write(&args.to, &outcome.output, &mut report)?;
        outcome.checked = check(&args.to, &mut report);
        if let (Some(db), Some(state)) = (&outcome.db, state_dir(args)) {
            let mut store = Store::open(&state)?;
            store.commit(&db.commit)?;
            store.close()?;
            report.summary.push(format!(
                "Wrote {} ban(s) and {} history entries into {}.",
                db.commit.bans_added.len(),
                db.commit.history_added.len(),
                state.join(crate::store::DB_FILE).display()
            ));
        }
    }
    report.summary.insert(
        0,
        format!(
            "{} jail(s) enabled in f2b: {}.",
            outcome.enabled.len(),
            outcome.enabled.join(", ")
        ),
    );
    if !args.dry_run {
        let path = args.to.join("import-report.txt");
        std::fs::write(&path, report.render())
            .map_err(|source| ImportError::Io { path, source })?;
    }
    outcome.report = report;
    Ok(outcome)
}

fn state_dir(args: &ImportArgs) -> Option<PathBuf> {
    Some(
        args.state_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(config::DEFAULT_STATE_DIR)),
    )
}

/// `f2b check` on what was written (built-in filters and the `filters/` beside it): the
/// jails it enables.
fn check(to: &Path, report: &mut Report) -> Option<Vec<String>> {
    let opts = LoadOptions {
        config: to.join("f2b.toml"),
        allow_missing: false,
        filter_dirs: Vec::new(),
        no_system_filters: true,
        services: crate::system::services(),
        ..LoadOptions::default()
    };
    match config::load(&opts) {
        Ok(s) => {
            let enabled: Vec<String> = s.enabled_jails().map(|j| j.name.clone()).collect();
            report.summary.push(format!(
                "f2b check: OK ({} jail(s) enabled).",
                enabled.len()
            ));
            Some(enabled)
        }
        Err(e) => {
            report.lost(
                "configuration",
                None,
                format!("the written configuration does not pass f2b check: {e}"),
            );
            None
        }
    }
}

fn import_db(
    args: &ImportArgs,
    opts: &Options,
    jails: &[convert::OutJail],
    defaults: &settings::Keys,
    report: &mut Report,
) -> Result<Option<database::Imported>, ImportError> {
    let db = match &args.db {
        Some(p) => p.clone(),
        None => {
            let f2b = reader::Config::read(&args.from, "fail2ban", reader::Scope::All)?;
            f2b.get("Definition", "dbfile", &Vars::new())
                .ok()
                .flatten()
                .map(|v| PathBuf::from(v.text.trim()))
                .filter(|p| p.is_absolute())
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DB))
        }
    };
    if !db.is_file() {
        if args.db.is_some() {
            return Err(ImportError::Usage(format!(
                "{}: no such fail2ban database",
                db.display()
            )));
        }
        report.add(
            Kind::NotImported,
            format!("database {}", db.display()),
            None,
            "does not exist: no bans to import",
        );
        return Ok(None);
    }
    let bantime = |j: &convert::OutJail| -> Option<u64> {
        let v = j
            .keys
            .keys
            .get("bantime")
            .or_else(|| defaults.keys.get("bantime"))
            .map(|(v, _)| v.clone());
        match v {
            Some(toml::Value::Integer(n)) if n < 0 => None,
            Some(toml::Value::String(s)) => config::parse_duration(&s).ok().map(|d| d.as_secs()),
            _ => Some(600),
        }
    };
    let targets: BTreeMap<String, database::Target> = jails
        .iter()
        .filter(|j| j.left_out.is_none())
        .map(|j| {
            (
                j.from.clone(),
                database::Target {
                    name: j.name.clone(),
                    bantime: bantime(j),
                },
            )
        })
        .collect();
    let imported = database::read(
        &db,
        &targets,
        opts.now_us,
        opts.history_max_age.as_secs(),
        report,
    )?;
    report.add(
        Kind::Imported,
        format!("database {}", db.display()),
        None,
        format!(
            "{} active ban(s) (with their remaining time and ban count), {} expired, {} history entries ({} added to match fail2ban's ban counts)",
            imported.active, imported.expired, imported.history, imported.added_history
        ),
    );
    Ok(Some(imported))
}
