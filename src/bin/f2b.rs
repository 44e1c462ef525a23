//! f2b: the command-line tool. Offline commands (check, test, filters, demo-journal, firewall)
//! work without the daemon; the others are clients of the org.f2b D-Bus API.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use f2b::client::{self, ClientCommand};
use f2b::config::{self, LoadOptions, DEFAULT_CONFIG, DEFAULT_CONFIG_TEXT};
use f2b::dbus::BusSpec;
use f2b::filter::library::{self, FilterLibrary};
use f2b::filter::samples;
use f2b::tester::{self, TestOptions, TestSource};

/// f2b: journald-native intrusion prevention (see f2b(1)).
#[derive(Debug, Parser)]
#[command(name = "f2b", version, about, long_about = None)]
pub struct Cli {
    /// Root configuration file (default /etc/f2b/f2b.toml; the shipped default when absent).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Extra filter directory, searched after /usr/lib/f2b/filters and /etc/f2b/filters.
    #[arg(long = "filter-dir", global = true, value_name = "DIR")]
    filter_dirs: Vec<PathBuf>,
    /// Use only the built-in filters and --filter-dir.
    #[arg(long, global = true)]
    no_system_filters: bool,
    /// Machine-readable output.
    #[arg(long, global = true)]
    json: bool,
    /// The bus f2bd serves org.f2b on: system, session, or a bus address.
    #[arg(long, global = true, value_name = "BUS", default_value = "system")]
    bus: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Validate the configuration and filters without running anything.
    Check,
    /// Run a filter over a journal or text and report what it matches (like fail2ban-regex).
    Test {
        /// Filter name or path to a filter file, optionally with `:MODE`.
        filter: String,
        /// Journal directory, journal file, text file of MESSAGE lines, or `-` for stdin.
        source: Option<String>,
        /// Do not apply the filter's journal matches (read every unit).
        #[arg(long)]
        all_units: bool,
        /// Replay this jail of the configuration and print the bans it would make.
        #[arg(long, value_name = "NAME")]
        jail: Option<String>,
        /// Check the filter's own sample file (built in, or given as SOURCE).
        #[arg(long)]
        samples: bool,
    },
    /// List the installed filters with their journal matches and modes.
    Filters,
    /// Read f2b's nftables table directly from the kernel (root; works without the daemon).
    Firewall {
        #[command(subcommand)]
        cmd: FirewallCmd,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions { shell: clap_complete::Shell },
    /// Write a demonstration journal (sshd attacks among ordinary traffic) into DIR.
    DemoJournal {
        dir: PathBuf,
        /// Number of entries.
        #[arg(long, default_value_t = 20_000)]
        entries: usize,
    },
    /// The jails with their counters, or one jail's settings, counters and bans.
    Status { jail: Option<String> },
    /// Ban an address or prefix (CIDR) in a jail.
    Ban {
        jail: String,
        addr: String,
        /// How long, e.g. "1h" or "2d" (default: the jail's ban time).
        #[arg(long = "for", value_name = "DURATION")]
        for_: Option<String>,
    },
    /// Lift bans: `f2b unban [JAIL] ADDR…`, or every ban with `f2b unban --all [JAIL]`.
    Unban {
        /// Lift every ban (of JAIL, or of every jail).
        #[arg(long)]
        all: bool,
        #[arg(value_name = "[JAIL] ADDR")]
        words: Vec<String>,
    },
    /// Active bans of one jail or of all.
    Bans { jail: Option<String> },
    /// Make f2bd re-read its configuration (the running one stays if the new one is broken).
    Reload,
    /// Print bans and unbans as they happen, until Ctrl-C.
    Monitor,
    /// Past bans of an address.
    History { addr: String },
    /// Enable a configured jail at run time.
    Start { jail: String },
    /// Disable a jail at run time.
    Stop { jail: String },
    /// Change maxretry, findtime or bantime of a running jail (until the next reload).
    Set {
        jail: String,
        /// maxretry, findtime or bantime.
        setting: String,
        value: String,
    },
    /// Turn a fail2ban setup (jails, filters, actions, bans) into an f2b configuration and
    /// state; prints what was imported, mapped, translated or not (exit status 1 when
    /// something enabled is not carried over).
    ///
    /// Reads fail2ban's files by fail2ban's rules (jail.conf, jail.d/*.conf, jail.local,
    /// jail.d/*.local, includes, interpolation) and writes DIR/f2b.toml, with each setting's
    /// fail2ban file and line, DIR/filters/ for filters translated from fail2ban's (a filter
    /// that needs look-around or back-references is reported with its file and line and its
    /// jail left out), and DIR/import-report.txt. Stock filters map to f2b's same-named ones.
    /// With --db or --state-dir, the bans fail2ban holds (remaining time, ban count) and its
    /// recent ban history go into f2b's state, which f2bd restores at start. Existing files
    /// are kept as NAME.before-import. Stop fail2ban first; check the result with
    /// f2b --config DIR/f2b.toml check.
    ImportFail2ban(f2b::import::ImportArgs),
}

/// The commands that talk to f2bd over D-Bus.
fn client_command(cmd: &Cmd) -> Option<anyhow::Result<ClientCommand>> {
    let c = |s: &String| s.clone();
    Some(Ok(match cmd {
        Cmd::Status { jail } => ClientCommand::Status { jail: jail.clone() },
        Cmd::Ban { jail, addr, for_ } => ClientCommand::Ban {
            jail: c(jail),
            addr: c(addr),
            for_: for_.clone(),
        },
        Cmd::Unban { all, words } => {
            return Some(ClientCommand::unban(words.clone(), *all).map_err(anyhow::Error::msg))
        }
        Cmd::Bans { jail } => ClientCommand::Bans { jail: jail.clone() },
        Cmd::Reload => ClientCommand::Reload,
        Cmd::Monitor => ClientCommand::Monitor,
        Cmd::History { addr } => ClientCommand::History { addr: c(addr) },
        Cmd::Start { jail } => ClientCommand::Start { jail: c(jail) },
        Cmd::Stop { jail } => ClientCommand::Stop { jail: c(jail) },
        Cmd::Set {
            jail,
            setting,
            value,
        } => ClientCommand::Set {
            jail: c(jail),
            setting: c(setting),
            value: c(value),
        },
        _ => return None,
    }))
}

#[derive(Debug, Subcommand)]
enum FirewallCmd {
    /// List every banned element of every jail with its remaining time.
    Show,
    /// Delete f2b's table (every ban). The daemon, if running, re-creates it.
    Flush,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("f2b: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn load_opts(cli: &Cli) -> LoadOptions {
    LoadOptions {
        config: cli
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG)),
        allow_missing: cli.config.is_none(),
        filter_dirs: cli.filter_dirs.clone(),
        no_system_filters: cli.no_system_filters,
        default_text: Some(DEFAULT_CONFIG_TEXT),
    }
}

fn filter_dirs(cli: &Cli) -> Vec<PathBuf> {
    let mut d = if cli.no_system_filters {
        Vec::new()
    } else {
        FilterLibrary::default_dirs()
    };
    d.extend(cli.config.as_deref().and_then(config::beside_filters));
    d.extend(cli.filter_dirs.iter().cloned());
    d
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    if let Some(cmd) = client_command(&cli.cmd) {
        let cmd = cmd?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let code = rt.block_on(client::run(BusSpec::parse(&cli.bus), cmd, cli.json))?;
        return Ok(u8::try_from(code).unwrap_or(1));
    }
    match &cli.cmd {
        Cmd::Check => {
            let s = config::load(&load_opts(&cli))?;
            let enabled: Vec<&str> = s.enabled_jails().map(|j| j.name.as_str()).collect();
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"ok": true, "files": s.files, "jails": s.jails.iter().map(|j| &j.name).collect::<Vec<_>>(), "enabled": enabled, "filters": s.library.filters.len()})
                );
            } else {
                let files: Vec<String> = s.files.iter().map(|p| p.display().to_string()).collect();
                println!(
                    "OK: {} ({} jails, {} enabled: {}; {} filters)",
                    if files.is_empty() {
                        "built-in default configuration".to_string()
                    } else {
                        files.join(", ")
                    },
                    s.jails.len(),
                    enabled.len(),
                    enabled.join(", "),
                    s.library.filters.len()
                );
            }
            Ok(0)
        }
        Cmd::Filters => {
            let lib = FilterLibrary::load(&filter_dirs(&cli))?;
            if cli.json {
                let v: Vec<_> = lib
                    .filters
                    .values()
                    .map(|f| {
                        serde_json::json!({
                            "name": f.name, "description": f.description, "origin": f.origin,
                            "matches": f.matches.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
                            "modes": f.modes().collect::<Vec<_>>(), "default_mode": f.default_mode,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for f in lib.filters.values() {
                    println!("{:<22} {}", f.name, f.description);
                    println!(
                        "{:<22}   matches: {}",
                        "",
                        f.matches
                            .iter()
                            .map(|m| m.to_string())
                            .collect::<Vec<_>>()
                            .join(" | ")
                    );
                    if f.modes().next().is_some() {
                        println!(
                            "{:<22}   modes: {} (default {})",
                            "",
                            f.mode_list(),
                            f.default_mode.as_deref().unwrap_or("-")
                        );
                    }
                    println!("{:<22}   from {}", "", f.origin);
                }
            }
            Ok(0)
        }
        Cmd::Test {
            filter,
            source,
            all_units,
            jail,
            samples: want_samples,
        } => {
            let (fname, mode) = match filter.rsplit_once(':') {
                Some((f, m)) if !m.contains('/') => (f, Some(m)),
                _ => (filter.as_str(), None),
            };
            let def = if fname.ends_with(".toml") || fname.contains('/') {
                FilterLibrary::load_file(std::path::Path::new(fname))?
            } else {
                let lib = FilterLibrary::load(&filter_dirs(&cli))?;
                lib.get(fname).cloned().ok_or_else(|| {
                    anyhow::anyhow!("unknown filter {fname:?} (see `f2b filters`)")
                })?
            };
            if *want_samples {
                let (origin, text) = match source {
                    Some(p) => (
                        p.clone(),
                        std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("{p}: {e}"))?,
                    ),
                    None => (
                        format!("builtin:tests/samples/{}.toml", def.name),
                        library::builtin_samples(&def.name)
                            .ok_or_else(|| {
                                anyhow::anyhow!("filter {} has no built-in samples", def.name)
                            })?
                            .to_string(),
                    ),
                };
                let list = samples::parse(&origin, &text).map_err(anyhow::Error::msg)?;
                let report = samples::check(&def, &origin, &list);
                for p in &report.problems {
                    println!("FAIL {p}");
                }
                println!(
                    "{}: {} samples, {} checks, {} problems",
                    def.name,
                    report.samples,
                    report.checks,
                    report.problems.len()
                );
                return Ok(if report.ok() { 0 } else { 1 });
            }
            let Some(source) = source else {
                anyhow::bail!(
                    "give a SOURCE (journal directory or file, text file, or -), or --samples"
                );
            };
            let compiled = def.compile(mode)?;
            let jail_cfg = match jail {
                Some(name) => {
                    let s = config::load(&load_opts(&cli))?;
                    Some(tester::jail_from(&s, name)?)
                }
                None => None,
            };
            let src = TestSource::guess(source);
            let opts = TestOptions {
                all_units: *all_units,
                json: cli.json,
                jail: jail_cfg,
            };
            let stdout = std::io::stdout();
            let sum = tester::run(&def, &compiled, &src, &opts, Box::new(stdout.lock()))?;
            let mut out = std::io::stdout().lock();
            if cli.json {
                writeln!(out, "{}", serde_json::json!({"summary": sum}))?;
            } else {
                tester::print_summary(&mut out, &def, &compiled, &src, &sum, *all_units)?;
            }
            Ok(0)
        }
        Cmd::Firewall { cmd } => {
            let fw = f2b::firewall::nft::spawn()?;
            match cmd {
                FirewallCmd::Show => {
                    let els = fw.list_blocking()?;
                    if cli.json {
                        println!("{}", serde_json::to_string_pretty(&els)?);
                    } else {
                        if els.is_empty() {
                            println!("no bans in table inet {}", f2b::firewall::TABLE_NAME);
                        }
                        for (jail, list) in f2b::firewall::by_jail(&els) {
                            println!("{jail}: {} banned", list.len());
                            for e in list {
                                let left = e
                                    .expires_in
                                    .map(config::format_duration)
                                    .unwrap_or_else(|| "permanent".into());
                                println!("  {:<43} {left}", f2b::engine::host_text(&e.net));
                            }
                        }
                    }
                }
                FirewallCmd::Flush => {
                    let rt = tokio::runtime::Builder::new_current_thread().build()?;
                    rt.block_on(fw.teardown())?;
                    println!("deleted table inet {}", f2b::firewall::TABLE_NAME);
                }
            }
            Ok(0)
        }
        Cmd::Completions { shell } => {
            use clap::CommandFactory;
            let mut buf = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "f2b", &mut buf);
            // A closed pipe (`| head`) is not an error worth a message.
            let _ = std::io::stdout().write_all(&buf);
            Ok(0)
        }
        Cmd::DemoJournal { dir, entries } => {
            let start = f2b::engine::now_us().saturating_sub(*entries as u64 * 100_000);
            f2b::source::export::write_journal(
                &dir.join("demo.journal"),
                f2b::source::export::synthetic(*entries, start, 100_000, 40),
            )?;
            println!(
                "wrote {entries} entries to {}",
                dir.join("demo.journal").display()
            );
            Ok(0)
        }
        Cmd::ImportFail2ban(args) => Ok(f2b::import::run(args)?),
        _ => unreachable!("daemon commands are handled above"),
    }
}
