//! `f2b test`: run a filter (and optionally a jail) over a journal or text, and report —
//! the equivalent of fail2ban-regex, through the same reader and filter code as the daemon.
//! What a run finds goes to a [`Report`] as it goes, and into the [`Summary`]; the command
//! line renders both (`crate::cli`).

use std::collections::BTreeMap;
use std::io::{self, BufRead};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use crate::config::{JailConfig, Settings};
use crate::engine::host_text;
use crate::filter::{CompiledFilter, EntryCtx, FilterDef, JournalMatch, Outcome, Sessions};
use crate::jail::{BanDecision, History, Jail, Verdict};
use crate::source::date::find_any;
use crate::source::syslog::SyslogParser;
use crate::source::{
    self, JournalSpec, Route, RouteStats, SourceConfig, SourceError, SourceEvent, StartAt,
};

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    #[error("{}: {error}", .path.display())]
    Read { path: PathBuf, error: io::Error },
    /// Issue 10.11: a directory without journal files read as an empty journal.
    #[error(
        "{}: no journal files (*.journal) in this directory or its subdirectories",
        .0.display()
    )]
    NoJournalFiles(PathBuf),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("journal: {0}")]
    Journal(String),
    /// The report could not be written (a closed pipe, usually).
    #[error("cannot write the output: {0}")]
    Output(io::Error),
    #[error("no jail {name:?} in {files}")]
    NoSuchJail { name: String, files: String },
}

/// What a run reports as it goes.
pub trait Report {
    /// A line matched a failregex.
    fn hit(&mut self, hit: &TestHit<'_>) -> io::Result<()>;
    /// The replayed jail would ban (`--jail`).
    fn ban(&mut self, ban: &BanDecision) -> io::Result<()>;
    /// A line given to the filter that no failregex matched (`--show-missed`; at most
    /// [`MAX_MISSED`]).
    fn missed(&mut self, message: &str) -> io::Result<()>;
}

/// At most this many missed lines are reported by `--show-missed`.
pub const MAX_MISSED: u64 = 1000;

/// One match.
#[derive(Debug, Clone, Copy)]
pub struct TestHit<'a> {
    pub addr: IpAddr,
    /// Index of the failregex.
    pub regex: usize,
    pub message: &'a str,
    pub time_us: u64,
    pub unit: Option<&'a str>,
    pub user: Option<&'a str>,
    /// `false` for a line of an attempt its session already counted: reported, not counted
    /// (see [`crate::filter::session`]).
    pub counted: bool,
    /// The line number in a text source (from 1); `None` for a journal.
    pub line: Option<u64>,
}

/// What to read.
#[derive(Debug, Clone)]
pub enum TestSource {
    Journal(JournalSpec),
    /// Text (`-` = stdin): syslog lines (RFC 3164, RFC 5424, ISO forms, see
    /// [`crate::source::syslog`]) or one MESSAGE per line.
    Text(PathBuf),
}

impl std::fmt::Display for TestSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TestSource::Journal(JournalSpec::System) => f.write_str("the system journal"),
            TestSource::Journal(JournalSpec::Directory(d)) => {
                write!(f, "journal directory {}", d.display())
            }
            TestSource::Journal(JournalSpec::Files(files)) => {
                let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
                write!(f, "journal file {}", names.join(", "))
            }
            TestSource::Text(p) if p.as_os_str() == "-" => f.write_str("text from standard input"),
            TestSource::Text(p) => write!(f, "text file {}", p.display()),
        }
    }
}

impl TestSource {
    /// A directory or `*.journal[~]` file is a journal; `-` or any other file is text.
    pub fn guess(arg: &str) -> TestSource {
        let p = Path::new(arg);
        if arg == "-" {
            TestSource::Text(p.to_path_buf())
        } else if p.is_dir() {
            TestSource::Journal(JournalSpec::Directory(p.to_path_buf()))
        } else if arg.ends_with(".journal") || arg.ends_with(".journal~") {
            TestSource::Journal(JournalSpec::Files(vec![p.to_path_buf()]))
        } else {
            TestSource::Text(p.to_path_buf())
        }
    }
}

/// Options of one run.
pub struct TestOptions {
    pub all_units: bool,
    /// Report the lines no failregex matched.
    pub show_missed: bool,
    /// Replay this jail's logic (maxretry, findtime, ignoreip…) and report its bans.
    pub jail: Option<JailConfig>,
}

/// The figures of a run.
#[derive(Debug, Default, serde::Serialize)]
pub struct Summary {
    pub entries: u64,
    pub routed: u64,
    pub matched: u64,
    pub ignored: u64,
    pub no_address: u64,
    /// Failure lines of an attempt already counted for their session (not counted again).
    pub absorbed: u64,
    pub missed: u64,
    /// Text lines of other programs (their syslog ident is not the filter's).
    pub other_programs: u64,
    pub per_regex: Vec<u64>,
    pub addresses: BTreeMap<String, u64>,
    pub bans: Vec<serde_json::Value>,
    pub elapsed_s: f64,
    pub entries_per_s: f64,
}

struct Acc<'a> {
    filter: &'a CompiledFilter,
    jail: Option<(Jail, History)>,
    sum: Summary,
    report: &'a mut dyn Report,
    show_missed: bool,
    shown_missed: u64,
}

impl Acc<'_> {
    fn missed(&mut self, message: &str) -> Result<(), TestError> {
        if self.show_missed && self.shown_missed < MAX_MISSED {
            self.shown_missed += 1;
            self.report.missed(message).map_err(TestError::Output)?;
        }
        Ok(())
    }

    fn hit(&mut self, hit: TestHit<'_>) -> Result<(), TestError> {
        self.report.hit(&hit).map_err(TestError::Output)?;
        if !hit.counted {
            return Ok(());
        }
        *self.sum.addresses.entry(hit.addr.to_string()).or_default() += 1;
        if let Some((jail, hist)) = &mut self.jail {
            if let Verdict::Ban(d) = jail.failure(hit.addr, hit.time_us, hit.message, hist) {
                hist.record(d.net, &d.jail, d.start_us, true);
                self.report.ban(&d).map_err(TestError::Output)?;
                self.sum.bans.push(json!({
                    "jail": d.jail, "address": host_text(&d.net), "time_us": d.start_us,
                    "bantime": d.bantime.to_string(), "failures": d.failures,
                }));
            }
        }
        Ok(())
    }
}

/// Run `def` (compiled as `filter`) over `src`, telling `report` what it finds as it goes;
/// return the figures.
pub fn run(
    def: &FilterDef,
    filter: &CompiledFilter,
    src: &TestSource,
    opts: &TestOptions,
    report: &mut dyn Report,
) -> Result<Summary, TestError> {
    let jail = opts.jail.clone().map(|cfg| {
        let hist = History::new(u64::MAX);
        (Jail::new(cfg, &[]), hist)
    });
    let mut acc = Acc {
        filter,
        jail,
        sum: Summary {
            per_regex: vec![0; filter.fail_count()],
            ..Default::default()
        },
        report,
        show_missed: opts.show_missed,
        shown_missed: 0,
    };
    let started = Instant::now();
    match src {
        TestSource::Text(path) => read_text(&mut acc, def, path, opts.all_units)?,
        TestSource::Journal(spec) => {
            if let JournalSpec::Directory(dir) = spec {
                if !has_journal_files(dir)? {
                    return Err(TestError::NoJournalFiles(dir.clone()));
                }
            }
            let matches: Vec<JournalMatch> = if opts.all_units {
                Vec::new()
            } else {
                def.matches.clone()
            };
            read_journal(&mut acc, spec, matches, opts.show_missed)?;
        }
    }
    let el = started.elapsed().as_secs_f64();
    acc.sum.elapsed_s = el;
    acc.sum.entries_per_s = if el > 0.0 {
        acc.sum.entries as f64 / el
    } else {
        0.0
    };
    Ok(acc.sum)
}

/// Text: syslog lines (their ident selects the filter's programs, their pid and time feed
/// sessions and the jail), or plain MESSAGE lines (their time from the filter's
/// `datepattern`, as the file reader takes it).
fn read_text(
    acc: &mut Acc<'_>,
    def: &FilterDef,
    path: &Path,
    all_units: bool,
) -> Result<(), TestError> {
    let read_err = |error| TestError::Read {
        path: path.to_path_buf(),
        error,
    };
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(io::BufReader::new(
            std::fs::File::open(path).map_err(read_err)?,
        ))
    };
    let mut sessions = Sessions::default();
    let parser = SyslogParser::default();
    let tz = jiff::tz::TimeZone::system();
    let base = crate::engine::now_us();
    for (i, line) in reader.split(b'\n').enumerate() {
        let line = line.map_err(read_err)?;
        let text = String::from_utf8_lossy(&line);
        let l = parser.parse(text.trim_end_matches('\r'));
        acc.sum.entries += 1;
        if let Some(ident) = l.ident {
            if !all_units && !def.selects_ident(ident) {
                acc.sum.other_programs += 1;
                continue;
            }
        }
        let msg = l.message.trim_end();
        let ctx = EntryCtx {
            time_us: (l.time_us)
                .or_else(|| find_any(&def.dates, msg, &tz))
                .unwrap_or(base + i as u64),
            pid: l.pid,
            boot: 0,
        };
        acc.sum.routed += 1;
        // rsyslog's "message repeated N times": N entries (see crate::source::syslog).
        for _ in 0..l.repeats {
            let hit = |addr, regex, user, counted| TestHit {
                addr,
                regex,
                message: msg,
                time_us: ctx.time_us,
                unit: None,
                user,
                counted,
                line: Some(i as u64 + 1),
            };
            match acc.filter.apply_entry(msg, &ctx, &mut sessions) {
                Outcome::Miss => {
                    acc.sum.missed += 1;
                    acc.missed(msg)?;
                }
                Outcome::Ignored { .. } => acc.sum.ignored += 1,
                Outcome::NoAddress { .. } => {
                    acc.sum.no_address += 1;
                    acc.missed(msg)?;
                }
                Outcome::Absorbed { regex, addr } => {
                    acc.sum.absorbed += 1;
                    acc.sum.per_regex[regex] += 1;
                    acc.hit(hit(addr, regex, None, false))?;
                }
                Outcome::Failure { regex, addr, user } => {
                    acc.sum.matched += 1;
                    acc.sum.per_regex[regex] += 1;
                    acc.hit(hit(addr, regex, user.as_deref(), true))?;
                }
            }
        }
    }
    Ok(())
}

/// A journal, through the daemon's reader.
fn read_journal(
    acc: &mut Acc<'_>,
    spec: &JournalSpec,
    matches: Vec<JournalMatch>,
    show_missed: bool,
) -> Result<(), TestError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let reader = source::spawn(
        SourceConfig {
            spec: spec.clone(),
            start: StartAt::Head,
            follow: false,
            batch: 8192,
        },
        vec![Route {
            jail: Arc::from("test"),
            matches,
            filter: acc.filter.clone(),
            report_missed: show_missed,
        }],
        tx,
    )?;
    let mut stats = RouteStats::default();
    let mut result = Ok(());
    while let Some(ev) = rx.blocking_recv() {
        match ev {
            SourceEvent::Batch(b) => {
                acc.sum.entries += b.entries;
                if let Some(s) = b.stats.first() {
                    stats.add(s);
                }
                result = b.missed.iter().try_for_each(|m| acc.missed(&m.message));
                if result.is_err() {
                    break;
                }
                result = b.hits.iter().try_for_each(|h| {
                    acc.hit(TestHit {
                        addr: h.addr,
                        regex: h.regex,
                        message: &h.message,
                        time_us: h.time_us,
                        unit: h.unit.as_deref(),
                        user: h.user.as_deref(),
                        counted: h.counts,
                        line: None,
                    })
                });
                if result.is_err() {
                    break;
                }
            }
            SourceEvent::Warning(w) => tracing::warn!("{w}"),
            SourceEvent::Failed(e) => {
                result = Err(TestError::Journal(e));
                break;
            }
            SourceEvent::CaughtUp(_) => {}
            SourceEvent::Ended(_) => break,
        }
    }
    reader.stop();
    result?;
    acc.sum.routed = stats.seen;
    acc.sum.matched = stats.matched;
    acc.sum.ignored = stats.ignored;
    acc.sum.no_address = stats.no_address;
    acc.sum.absorbed = stats.absorbed;
    acc.sum.missed = stats.missed();
    for (a, b) in acc.sum.per_regex.iter_mut().zip(&stats.per_regex) {
        *a = *b;
    }
    Ok(())
}

/// Whether `dir`, or a directory in it (journald keeps files in a machine-id directory),
/// holds journal files: what sd_journal_open_directory reads.
fn has_journal_files(dir: &Path) -> Result<bool, TestError> {
    let is_journal = |p: &Path| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        name.ends_with(".journal") || name.ends_with(".journal~")
    };
    let read_err = |error| TestError::Read {
        path: dir.to_path_buf(),
        error,
    };
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let p = entry.map_err(read_err)?.path();
        if is_journal(&p) {
            return Ok(true);
        }
        if p.is_dir() {
            if let Ok(sub) = std::fs::read_dir(&p) {
                if sub.flatten().any(|e| is_journal(&e.path())) {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

/// For `--jail NAME`: the jail from a loaded configuration.
pub fn jail_from(settings: &Settings, name: &str) -> Result<JailConfig, TestError> {
    settings
        .jail(name)
        .cloned()
        .ok_or_else(|| TestError::NoSuchJail {
            name: name.to_string(),
            files: settings
                .files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}
