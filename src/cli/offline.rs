//! The commands that work without the daemon: check, filters, firewall, completions,
//! demo-journal (`f2b test` is in [`super::test`]).

use std::io::Write;
use std::path::Path;

use serde_json::json;

use super::args::{Cli, ConfigArgs, FilterArgs, FirewallCmd};
use super::render::{self, count};
use super::CliError;
use crate::config::{self, format_duration};
use crate::engine::host_text;
use crate::filter::library::FilterLibrary;
use crate::firewall::{self, TABLE_NAME};

/// `f2b check`.
pub fn check(c: &ConfigArgs, json: bool, out: &mut dyn Write) -> Result<(), CliError> {
    let s = config::load(&c.load_options(crate::system::services()))?;
    let enabled: Vec<&str> = s.enabled_jails().map(|j| j.name.as_str()).collect();
    if json {
        let jails: Vec<&String> = s.jails.iter().map(|j| &j.name).collect();
        return render::json(
            out,
            &json!({"ok": true, "files": s.files, "jails": jails, "enabled": enabled,
                    "filters": s.library.filters.len()}),
        );
    }
    let files = if s.files.is_empty() {
        "built-in default configuration".to_string()
    } else {
        let f: Vec<String> = s.files.iter().map(|p| p.display().to_string()).collect();
        f.join(", ")
    };
    writeln!(
        out,
        "OK: {files} ({}, {} enabled{}; {})",
        count(s.jails.len() as u64, "jail", "jails"),
        enabled.len(),
        if enabled.is_empty() {
            String::new()
        } else {
            format!(": {}", enabled.join(", "))
        },
        count(s.library.filters.len() as u64, "filter", "filters"),
    )?;
    Ok(())
}

/// `f2b filters`.
pub fn filters(f: &FilterArgs, json: bool, out: &mut dyn Write) -> Result<(), CliError> {
    let lib = FilterLibrary::load(&f.dirs())?;
    if json {
        let v: Vec<_> = (lib.filters.values())
            .map(|f| {
                json!({
                    "name": f.name, "description": f.description, "origin": f.origin,
                    "matches": f.matches.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
                    "modes": f.modes().collect::<Vec<_>>(), "default_mode": f.default_mode,
                })
            })
            .collect();
        return render::json(out, &v);
    }
    for f in lib.filters.values() {
        let matches: Vec<String> = f.matches.iter().map(|m| m.to_string()).collect();
        writeln!(out, "{:<22} {}", f.name, f.description)?;
        writeln!(out, "{:<22}   matches: {}", "", matches.join(" | "))?;
        if f.modes().next().is_some() {
            writeln!(
                out,
                "{:<22}   modes: {} (default {})",
                "",
                f.mode_list(),
                f.default_mode.as_deref().unwrap_or("-")
            )?;
        }
        writeln!(out, "{:<22}   from {}", "", f.origin)?;
    }
    Ok(())
}

/// `f2b firewall show|flush`.
pub fn firewall(cmd: &FirewallCmd, out: &mut dyn Write) -> Result<(), CliError> {
    let fw = firewall::nft::spawn()?;
    match cmd {
        FirewallCmd::Show { out: o } => {
            let els = fw.list_blocking()?;
            if o.json {
                return render::json(out, &els);
            }
            if els.is_empty() {
                writeln!(out, "no bans in table inet {TABLE_NAME}")?;
            }
            for (jail, list) in firewall::by_jail(&els) {
                writeln!(out, "{jail}: {} banned", list.len())?;
                for e in list {
                    let left = e
                        .expires_in
                        .map(format_duration)
                        .unwrap_or_else(|| "permanent".into());
                    writeln!(out, "  {:<43} {left}", host_text(&e.net))?;
                }
            }
        }
        FirewallCmd::Flush => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .map_err(CliError::Runtime)?;
            rt.block_on(fw.teardown())?;
            writeln!(out, "deleted table inet {TABLE_NAME}")?;
        }
    }
    Ok(())
}

/// `f2b completions SHELL`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> Result<(), CliError> {
    use clap::CommandFactory;
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "f2b", &mut buf);
    out.write_all(&buf)?;
    Ok(())
}

/// `f2b demo-journal DIR`.
pub fn demo_journal(dir: &Path, entries: usize, out: &mut dyn Write) -> Result<(), CliError> {
    let path = dir.join("demo.journal");
    let start = crate::engine::now_us().saturating_sub(entries as u64 * 100_000);
    crate::source::export::write_journal(
        &path,
        crate::source::export::synthetic(entries, start, 100_000, 40),
    )
    .map_err(|error| CliError::Journal {
        path: path.clone(),
        error,
    })?;
    writeln!(out, "wrote {entries} entries to {}", path.display())?;
    Ok(())
}
