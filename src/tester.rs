//! `f2b test`: run a filter (and optionally a jail) over a journal or text, and report —
//! the equivalent of fail2ban-regex, through the same reader and filter code as the daemon.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use crate::config::{JailConfig, Settings};
use crate::engine::host_text;
use crate::filter::{CompiledFilter, EntryCtx, FilterDef, JournalMatch, Outcome, Sessions};
use crate::jail::{History, Jail, Verdict};
use crate::source::syslog::SyslogParser;
use crate::source::{self, JournalSpec, Route, RouteStats, SourceConfig, SourceEvent, StartAt};

/// What to read.
#[derive(Debug, Clone)]
pub enum TestSource {
    Journal(JournalSpec),
    /// Text (`-` = stdin): syslog lines (RFC 3164, RFC 5424, ISO) or one MESSAGE per line.
    Text(PathBuf),
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
    /// Print the lines given to the filter that no failregex matched (at most
    /// [`MAX_MISSED`]).
    pub show_missed: bool,
    pub json: bool,
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
    /// Failure lines of an attempt already counted for their session.
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
    json: bool,
    out: Box<dyn Write + 'a>,
    shown_missed: u64,
}

/// At most this many missed lines are printed by `--show-missed`.
pub const MAX_MISSED: u64 = 1000;

impl Acc<'_> {
    fn missed(&mut self, opts: &TestOptions, msg: &str) -> std::io::Result<()> {
        if !opts.show_missed {
            return Ok(());
        }
        self.shown_missed += 1;
        if self.shown_missed > MAX_MISSED {
            return Ok(());
        }
        if self.json {
            writeln!(self.out, "{}", json!({"missed": msg}))
        } else {
            writeln!(self.out, "missed  {msg}")
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn hit(
        &mut self,
        addr: IpAddr,
        regex: usize,
        msg: &str,
        t: u64,
        unit: Option<&str>,
        user: Option<&str>,
        counts: bool,
    ) -> std::io::Result<()> {
        if self.json {
            let mut o = json!({"ip": addr.to_string(), "regex": regex, "message": msg, "time_us": t, "unit": unit, "counted": counts});
            if let Some(u) = user {
                o["user"] = json!(u);
            }
            writeln!(self.out, "{o}")?;
        }
        if !counts {
            return Ok(());
        }
        *self.sum.addresses.entry(addr.to_string()).or_default() += 1;
        if let Some((jail, hist)) = &mut self.jail {
            if let Verdict::Ban(d) = jail.failure(addr, t, msg, hist) {
                hist.record(d.net, &d.jail, d.start_us, true);
                let b = json!({
                    "jail": d.jail, "address": host_text(&d.net), "time_us": d.start_us,
                    "bantime": d.bantime.to_string(), "failures": d.failures,
                });
                if !self.json {
                    writeln!(
                        self.out,
                        "ban  {:<40} at {} for {} after {} failures",
                        host_text(&d.net),
                        fmt_time(d.start_us),
                        d.bantime,
                        d.failures
                    )?;
                }
                self.sum.bans.push(b);
            }
        }
        Ok(())
    }
}

fn fmt_time(us: u64) -> String {
    let secs = (us / 1_000_000) as i64;
    // UTC, RFC 3339-ish, without a date crate.
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's days → civil date.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Run `def` (compiled as `filter`) over `src`; print per-hit JSON when asked; return figures.
pub fn run(
    def: &FilterDef,
    filter: &CompiledFilter,
    src: &TestSource,
    opts: &TestOptions,
    out: Box<dyn Write + '_>,
) -> anyhow::Result<Summary> {
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
        json: opts.json,
        out,
        shown_missed: 0,
    };
    let started = Instant::now();
    match src {
        TestSource::Text(path) => {
            let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
                Box::new(std::io::stdin().lock())
            } else {
                Box::new(std::io::BufReader::new(
                    std::fs::File::open(path)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
                ))
            };
            let mut sessions = Sessions::default();
            let parser = SyslogParser::default();
            let base = crate::engine::now_us();
            for (i, line) in reader.split(b'\n').enumerate() {
                let line = line?;
                let text = String::from_utf8_lossy(&line);
                let l = parser.parse(text.trim_end_matches('\r'));
                acc.sum.entries += 1;
                if let Some(ident) = l.ident {
                    if !opts.all_units && !def.selects_ident(ident) {
                        acc.sum.other_programs += 1;
                        continue;
                    }
                }
                let msg = l.message.trim_end();
                let ctx = EntryCtx {
                    time_us: l.time_us.unwrap_or(base + i as u64),
                    pid: l.pid,
                    boot: 0,
                };
                acc.sum.routed += 1;
                match acc.filter.apply_entry(msg, &ctx, &mut sessions) {
                    Outcome::Miss => {
                        acc.sum.missed += 1;
                        acc.missed(opts, msg)?;
                    }
                    Outcome::Ignored { .. } => acc.sum.ignored += 1,
                    Outcome::NoAddress { .. } => {
                        acc.sum.no_address += 1;
                        acc.missed(opts, msg)?;
                    }
                    Outcome::Absorbed { regex, addr } => {
                        acc.sum.absorbed += 1;
                        acc.sum.per_regex[regex] += 1;
                        acc.hit(addr, regex, msg, ctx.time_us, None, None, false)?;
                    }
                    Outcome::Failure { regex, addr, user } => {
                        acc.sum.matched += 1;
                        acc.sum.per_regex[regex] += 1;
                        acc.hit(addr, regex, msg, ctx.time_us, None, user.as_deref(), true)?;
                    }
                }
            }
        }
        TestSource::Journal(spec) => {
            let matches: Vec<JournalMatch> = if opts.all_units {
                Vec::new()
            } else {
                def.matches.clone()
            };
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
                    filter: filter.clone(),
                    report_missed: opts.show_missed,
                }],
                tx,
            )?;
            let mut stats = RouteStats::default();
            while let Some(ev) = rx.blocking_recv() {
                match ev {
                    SourceEvent::Batch(b) => {
                        acc.sum.entries += b.entries;
                        if let Some(s) = b.stats.first() {
                            stats.add(s);
                        }
                        for m in &b.missed {
                            acc.missed(opts, &m.message)?;
                        }
                        for h in &b.hits {
                            acc.hit(
                                h.addr,
                                h.regex,
                                &h.message,
                                h.time_us,
                                h.unit.as_deref(),
                                h.user.as_deref(),
                                h.counts,
                            )?;
                        }
                    }
                    SourceEvent::Warning(w) => eprintln!("warning: {w}"),
                    SourceEvent::Failed(e) => anyhow::bail!("journal: {e}"),
                    SourceEvent::CaughtUp => {}
                    SourceEvent::Ended => break,
                }
            }
            reader.stop();
            acc.sum.routed = stats.seen;
            acc.sum.matched = stats.matched;
            acc.sum.ignored = stats.ignored;
            acc.sum.no_address = stats.no_address;
            acc.sum.absorbed = stats.absorbed;
            acc.sum.missed = stats.missed();
            for (a, b) in acc.sum.per_regex.iter_mut().zip(&stats.per_regex) {
                *a = *b;
            }
        }
    }
    let el = started.elapsed().as_secs_f64();
    acc.sum.elapsed_s = el;
    acc.sum.entries_per_s = if el > 0.0 {
        acc.sum.entries as f64 / el
    } else {
        0.0
    };
    acc.out.flush()?;
    Ok(acc.sum)
}

/// Render the human summary.
pub fn print_summary(
    w: &mut dyn Write,
    def: &FilterDef,
    filter: &CompiledFilter,
    src: &TestSource,
    s: &Summary,
    all_units: bool,
) -> std::io::Result<()> {
    writeln!(
        w,
        "Filter:     {} (mode {}) from {}",
        def.name,
        filter.mode.as_deref().unwrap_or("-"),
        def.origin
    )?;
    match src {
        TestSource::Journal(spec) => {
            let m = if all_units {
                "all units".to_string()
            } else {
                def.matches
                    .iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
                    .join(" | ")
            };
            writeln!(w, "Source:     journal {spec:?}, matches: {m}")?;
        }
        TestSource::Text(p) => writeln!(w, "Source:     text {}", p.display())?,
    }
    writeln!(
        w,
        "Entries:    {} read, {} given to the filter",
        s.entries, s.routed
    )?;
    writeln!(
        w,
        "Results:    {} matched (+{} lines of attempts already counted for their session), {} ignored, {} without address, {} missed",
        s.matched, s.absorbed, s.ignored, s.no_address, s.missed
    )?;
    if s.other_programs > 0 {
        writeln!(
            w,
            "Other:      {} line{} of other programs (their syslog ident is not this filter's)",
            s.other_programs,
            if s.other_programs == 1 { "" } else { "s" }
        )?;
    }
    writeln!(w, "Failregex hits:")?;
    for (i, n) in s.per_regex.iter().enumerate() {
        let src = filter.fail_source(i);
        writeln!(w, "  #{i:<3} {n:>9}  {}  ({})", src.text, src.loc)?;
    }
    let mut top: Vec<(&String, &u64)> = s.addresses.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    writeln!(w, "Addresses:  {} distinct", s.addresses.len())?;
    for (a, n) in top.iter().take(20) {
        writeln!(w, "  {a:<40} {n}")?;
    }
    if top.len() > 20 {
        writeln!(w, "  … {} more", top.len() - 20)?;
    }
    if !s.bans.is_empty() {
        writeln!(w, "Bans:       {}", s.bans.len())?;
    }
    writeln!(
        w,
        "Elapsed:    {:.3} s, {:.0} entries/s",
        s.elapsed_s, s.entries_per_s
    )
}

/// For `--jail NAME`: the jail from a loaded configuration.
pub fn jail_from(settings: &Settings, name: &str) -> anyhow::Result<JailConfig> {
    settings
        .jail(name)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no jail {name:?} in {:?}", settings.files))
}
