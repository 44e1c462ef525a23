//! `f2b test`: a filter (and optionally a jail) over the system journal, a journal directory
//! or file, or text; `--samples` checks a filter against its sample file.

use std::io::{self, Write};
use std::path::Path;

use serde_json::json;

use super::args::TestArgs;
use super::render::local_time;
use super::CliError;
use crate::config;
use crate::engine::host_text;
use crate::filter::library::{self, FilterLibrary};
use crate::filter::{samples, CompiledFilter, FilterDef};
use crate::jail::BanDecision;
use crate::source::JournalSpec;
use crate::tester::{self, Report, Summary, TestHit, TestOptions, TestSource};

/// Returns the exit status: 1 when a sample check fails.
pub fn run(a: &TestArgs, out: &mut dyn Write) -> Result<u8, CliError> {
    let (fname, mode) = match a.filter.rsplit_once(':') {
        Some((f, m)) if !m.contains('/') => (f, Some(m)),
        _ => (a.filter.as_str(), None),
    };
    let def = if fname.ends_with(".toml") || fname.contains('/') {
        FilterLibrary::load_file(Path::new(fname))?
    } else {
        let lib = FilterLibrary::load(&a.config.filter_dirs())?;
        lib.get(fname)
            .cloned()
            .ok_or_else(|| CliError::UnknownFilter(fname.to_string()))?
    };
    if a.samples {
        return check_samples(&def, a.source.as_deref(), out);
    }
    let compiled = def.compile(mode)?;
    let jail = match &a.jail {
        Some(name) => {
            let s = config::load(&a.config.load_options(crate::system::services()))?;
            Some(tester::jail_from(&s, name)?)
        }
        None => None,
    };
    let src = match (&a.source, &a.journal_dir) {
        (Some(s), _) => TestSource::guess(s),
        (None, Some(d)) => TestSource::Journal(JournalSpec::Directory(d.clone())),
        (None, None) => TestSource::Journal(JournalSpec::System),
    };
    let opts = TestOptions {
        all_units: a.all_units,
        show_missed: a.show_missed,
        jail,
    };
    let mut lines = Lines {
        out: &mut *out,
        json: a.out.json,
    };
    let sum = tester::run(&def, &compiled, &src, &opts, &mut lines)?;
    if matches!(src, TestSource::Journal(JournalSpec::System)) && sum.entries == 0 {
        eprintln!(
            "f2b: note: no entries read from the system journal: is it readable by you \
             (root, or the groups systemd-journal or adm)?"
        );
    }
    if a.out.json {
        writeln!(out, "{}", json!({"summary": sum}))?;
    } else {
        summary(out, &def, &compiled, &src, &sum, a.all_units)?;
    }
    Ok(super::EXIT_OK)
}

/// Each hit as a JSON line (`--json`), each ban of a replayed jail as a line.
struct Lines<'a> {
    out: &'a mut dyn Write,
    json: bool,
}

impl Report for Lines<'_> {
    fn hit(&mut self, h: &TestHit<'_>) -> io::Result<()> {
        if !self.json {
            return Ok(());
        }
        let mut o = json!({"ip": h.addr.to_string(), "regex": h.regex, "message": h.message,
                           "time_us": h.time_us, "unit": h.unit, "counted": h.counted});
        if let Some(u) = h.user {
            o["user"] = json!(u);
        }
        if let Some(n) = h.line {
            o["line"] = json!(n);
        }
        writeln!(self.out, "{o}")
    }

    fn missed(&mut self, message: &str) -> io::Result<()> {
        if self.json {
            writeln!(self.out, "{}", json!({ "missed": message }))
        } else {
            writeln!(self.out, "missed  {message}")
        }
    }

    fn ban(&mut self, d: &BanDecision) -> io::Result<()> {
        if self.json {
            return Ok(());
        }
        writeln!(
            self.out,
            "ban  {:<40} at {} for {} after {} failures",
            host_text(&d.net),
            local_time(d.start_us),
            d.bantime,
            d.failures
        )
    }
}

fn check_samples(
    def: &FilterDef,
    source: Option<&str>,
    out: &mut dyn Write,
) -> Result<u8, CliError> {
    let (origin, text) = match source {
        Some(p) => (
            p.to_string(),
            std::fs::read_to_string(p).map_err(|error| CliError::Read {
                path: p.into(),
                error,
            })?,
        ),
        None => (
            format!("builtin:tests/samples/{}.toml", def.name),
            library::builtin_samples(&def.name)
                .ok_or_else(|| CliError::NoSamples(def.name.clone()))?
                .to_string(),
        ),
    };
    let file = samples::parse(&origin, &text).map_err(CliError::Samples)?;
    let report = samples::check(def, &origin, &file);
    for p in &report.problems {
        writeln!(out, "FAIL {p}")?;
    }
    writeln!(
        out,
        "{}: {} samples, {} checks, {} problems",
        def.name,
        report.samples,
        report.checks,
        report.problems.len()
    )?;
    Ok(if report.ok() {
        super::EXIT_OK
    } else {
        super::EXIT_FAILURE
    })
}

/// The human summary.
fn summary(
    w: &mut dyn Write,
    def: &FilterDef,
    filter: &CompiledFilter,
    src: &TestSource,
    s: &Summary,
    all_units: bool,
) -> io::Result<()> {
    writeln!(
        w,
        "Filter:     {} (mode {}) from {}",
        def.name,
        filter.mode.as_deref().unwrap_or("-"),
        def.origin
    )?;
    match src {
        TestSource::Journal(_) => {
            let m = if all_units {
                "all units".to_string()
            } else {
                let m: Vec<String> = def.matches.iter().map(|m| m.to_string()).collect();
                m.join(" | ")
            };
            writeln!(w, "Source:     {src}, matches: {m}")?;
        }
        TestSource::Text(_) => writeln!(w, "Source:     {src}")?,
    }
    writeln!(
        w,
        "Entries:    {} read, {} given to the filter",
        s.entries, s.routed
    )?;
    writeln!(
        w,
        "Results:    {} matched (+{} lines of attempts already counted for their session), \
         {} ignored, {} without address, {} missed",
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
