//! The command lines: `f2b` (all of it) and the configuration options `f2bd` shares.
//!
//! - [`args`]: the clap definitions, declared once; f2b(1) and the completions come from them.
//! - [`client`]: the D-Bus connection to f2bd and the reads commands share.
//! - [`daemon`], [`monitor`]: the commands that ask f2bd.
//! - [`offline`], [`test`]: the commands that work without it.
//! - [`render`]: tables, times, counts, JSON.
//! - [`error`]: [`CliError`], exit statuses, and [`error_text`] for printing any error once.
//!
//! Exit status: [`EXIT_OK`], [`EXIT_FAILURE`] (a refused or failed request: the message says
//! why), [`EXIT_USAGE`] (the command line is wrong), [`EXIT_NOT_RUNNING`] (f2bd is not on the
//! bus, or the bus cannot be reached) and [`EXIT_DENIED`] (not authorized). Output goes to
//! standard output; when its reader goes away (`f2b … | head`), `f2b` ends quietly with 0.

pub mod args;
pub mod client;
pub mod daemon;
pub mod error;
pub mod feeds;
pub mod fleet;
pub mod monitor;
pub mod offline;
pub mod render;
pub mod test;

use std::io::Write;
use std::process::ExitCode;

pub use args::{Cli, Cmd, ConfigArgs, DaemonCmd, FilterArgs, LocalCmd};
pub use error::{
    error_text, CliError, EXIT_DENIED, EXIT_FAILURE, EXIT_NOT_RUNNING, EXIT_OK, EXIT_USAGE,
};

use args::UnbanTarget;
use client::Client;
use daemon::Out;

/// Run `f2b` as parsed; print an error once; the exit status.
pub fn main(cli: Cli) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let res = run(cli.cmd, &mut out).and_then(|code| {
        out.flush()?;
        Ok(code)
    });
    ExitCode::from(match res {
        Ok(code) => code,
        Err(e) if e.is_broken_pipe() => EXIT_OK,
        Err(e) => report(&e),
    })
}

/// Print `e` on standard error (every line prefixed `f2b: `); its exit status.
pub fn report(e: &CliError) -> u8 {
    for line in error_text(e).lines() {
        eprintln!("f2b: {line}");
    }
    e.exit_code()
}

/// One command; its exit status (0, or 1 for failed sample checks and refused unbans).
pub fn run(cmd: Cmd, out: &mut dyn Write) -> Result<u8, CliError> {
    match cmd {
        Cmd::Local(cmd) => local_command(cmd, out),
        Cmd::Daemon(cmd) => daemon_command(cmd, out),
    }
}

fn local_command(cmd: LocalCmd, out: &mut dyn Write) -> Result<u8, CliError> {
    match cmd {
        LocalCmd::Check { config, out: o } => offline::check(&config, o.json, out)?,
        LocalCmd::Test(a) => return test::run(&a, out),
        LocalCmd::ImportFail2ban(a) => return Ok(crate::import::run(&a, out)?),
        LocalCmd::Filters { filters, out: o } => offline::filters(&filters, o.json, out)?,
        LocalCmd::Firewall { cmd } => offline::firewall(&cmd, out)?,
        LocalCmd::Completions { shell } => offline::completions(shell, out)?,
        LocalCmd::DemoJournal { dir, entries } => offline::demo_journal(&dir, entries, out)?,
    }
    Ok(EXIT_OK)
}

/// The commands that talk to f2bd, on a single-threaded runtime.
fn daemon_command(cmd: DaemonCmd, w: &mut dyn Write) -> Result<u8, CliError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    rt.block_on(async move {
        match cmd {
            DaemonCmd::Status { jail, bus, out: o } => {
                let c = Client::connect(bus.bus).await?;
                match jail {
                    None => daemon::status_all(&c, Out { w, json: o.json }).await?,
                    Some(j) => daemon::status_jail(&c, &j, Out { w, json: o.json }).await?,
                }
            }
            DaemonCmd::Ban {
                jail,
                addr,
                for_,
                force,
                bus,
                out: o,
            } => {
                let c = Client::connect(bus.bus).await?;
                let out = Out { w, json: o.json };
                daemon::ban(&c, &jail, &addr, for_, force, out).await?
            }
            DaemonCmd::Unban {
                all,
                words,
                bus,
                out: o,
            } => {
                let target = UnbanTarget::from_words(&words, all).map_err(CliError::Usage)?;
                let c = Client::connect(bus.bus).await?;
                return daemon::unban(&c, target, Out { w, json: o.json }).await;
            }
            DaemonCmd::Bans { jail, bus, out: o } => {
                let c = Client::connect(bus.bus).await?;
                daemon::bans(&c, jail, Out { w, json: o.json }).await?
            }
            DaemonCmd::Reload { bus, out: o } => {
                let c = Client::connect(bus.bus).await?;
                daemon::reload(&c, Out { w, json: o.json }).await?
            }
            DaemonCmd::Monitor { bus, out: o } => {
                let c = Client::connect(bus.bus).await?;
                monitor::monitor(&c, Out { w, json: o.json }).await?
            }
            DaemonCmd::History { addr, bus, out: o } => {
                let c = Client::connect(bus.bus).await?;
                daemon::history(&c, addr, Out { w, json: o.json }).await?
            }
            DaemonCmd::Start { jail, bus } => {
                let c = Client::connect(bus.bus).await?;
                daemon::start_stop(&c, &jail, true, w).await?
            }
            DaemonCmd::Stop { jail, bus } => {
                let c = Client::connect(bus.bus).await?;
                daemon::start_stop(&c, &jail, false, w).await?
            }
            DaemonCmd::Set { jail, setting, bus } => {
                let c = Client::connect(bus.bus).await?;
                daemon::set(&c, &jail, setting, w).await?
            }
            DaemonCmd::Feeds {
                refresh,
                name,
                bus,
                out: o,
            } => {
                let c = Client::connect(bus.bus).await?;
                feeds::feeds(&c, name, refresh, Out { w, json: o.json }).await?
            }
            DaemonCmd::Fleet { bus, out: o } => {
                let c = Client::connect(bus.bus).await?;
                fleet::fleet(&c, Out { w, json: o.json }).await?
            }
        }
        Ok(EXIT_OK)
    })
}
