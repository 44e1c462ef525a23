//! f2bd: the f2b daemon. Thin: parse arguments, build, run, map errors to exit codes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use f2b::cli::{error_text, ConfigArgs};
use f2b::config;
use f2b::dbus::BusSpec;
use f2b::engine::{Engine, EngineOptions};
use f2b::firewall::{DryRun, Firewall, FirewallHandle};
use f2b::logging::{self, LogTarget, MSGID_START, MSGID_STOP};
use f2b::source::{JournalSpec, SourceConfig, StartAt};

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum FirewallKind {
    /// Program the `inet f2b` nftables table over netlink.
    Nftables,
    /// Dry run: log ban decisions, change nothing.
    None,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum LogArg {
    Auto,
    Journal,
    Stderr,
}

/// f2b daemon: reads the systemd journal, bans attackers with nftables.
#[derive(Debug, Parser)]
#[command(name = "f2bd", version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// Read journal files from this directory instead of the system journal.
    #[arg(long, value_name = "DIR", conflicts_with = "journal_file")]
    journal_dir: Option<PathBuf>,
    /// Read these journal files instead of the system journal.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    journal_file: Vec<PathBuf>,
    /// Without a saved cursor: start this far back (e.g. "1h", "2d") instead of at the end.
    #[arg(long, value_name = "DURATION", conflicts_with = "from_start",
          value_parser = f2b::cli::args::duration)]
    since: Option<Duration>,
    /// Without a saved cursor: start at the oldest entry of the journal.
    #[arg(long)]
    from_start: bool,
    /// Process what is in the journal, then exit (do not follow).
    #[arg(long)]
    no_follow: bool,
    /// Timer mode: resume from the saved cursor, process to the end of the journal, apply
    /// bans (the kernel expires them), save the cursor, exit. Same as --no-follow.
    #[arg(long)]
    oneshot: bool,
    /// Keep no state: no database, no cursor (tests, demos).
    #[arg(long, conflicts_with = "state_dir")]
    ephemeral: bool,
    /// Enforcement backend.
    #[arg(long, value_enum, default_value = "nftables")]
    firewall: FirewallKind,
    /// State directory (ban database, journal cursor).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// D-Bus to serve the control interface on: system, session, none, or a bus address.
    #[arg(long, value_name = "BUS", default_value = "system", value_parser = bus)]
    bus: ServeOn,
    /// Where to log.
    #[arg(long, value_enum, default_value = "auto")]
    log: LogArg,
    /// Log level (error, warn, info, debug, trace); RUST_LOG overrides.
    #[arg(long, default_value = "info")]
    log_level: String,
}

/// `--bus`: a bus, or "none" for no D-Bus interface.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ServeOn(Option<BusSpec>);

fn bus(s: &str) -> Result<ServeOn, String> {
    Ok(ServeOn((s != "none").then(|| BusSpec::parse(s))))
}

fn main() -> ExitCode {
    let args = Args::parse();
    logging::init(
        match args.log {
            LogArg::Auto => LogTarget::Auto,
            LogArg::Journal => LogTarget::Journal,
            LogArg::Stderr => LogTarget::Stderr,
        },
        &args.log_level,
    );
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("f2bd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let text = error_text(e.as_ref());
            error!("{text}");
            eprintln!("f2bd: {text}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let load = args.config.load_options(f2b::system::services());
    let mut settings = config::load(&load)?;
    if let Some(d) = &args.state_dir {
        settings.daemon.state_dir = d.clone();
    }
    let spec = match (&args.journal_dir, args.journal_file.is_empty()) {
        (Some(d), _) => JournalSpec::Directory(d.clone()),
        (None, false) => JournalSpec::Files(args.journal_file.clone()),
        (None, true) => JournalSpec::System,
    };
    let start = if args.from_start {
        StartAt::Head
    } else if let Some(d) = args.since {
        StartAt::Since(f2b::engine::now_us().saturating_sub(d.as_micros() as u64))
    } else {
        StartAt::Tail
    };
    let (fw_tx, fw_rx) = mpsc::unbounded_channel();
    let (firewall, _monitor) = match args.firewall {
        FirewallKind::None => (
            FirewallHandle::spawn(|| Ok(Box::new(DryRun::new()) as Box<dyn Firewall>))?,
            None,
        ),
        FirewallKind::Nftables => {
            let fw = f2b::firewall::nft::spawn()?;
            // Hear about `nft flush ruleset` & co. from the kernel (no polling).
            let monitor = f2b::firewall::nft::spawn_monitor(move |ev| {
                let _ = fw_tx.send(ev.to_string());
            })?;
            (fw, Some(monitor))
        }
    };
    // A saved cursor always wins (exact resume); --since/--from-start say where to begin
    // when there is none (first start, or --ephemeral).
    let resume = true;
    let mut notice = None;
    let (store, snapshot) = if args.ephemeral {
        (None, None)
    } else {
        let dir = settings.daemon.state_dir.clone();
        let (h, snap, recovered) =
            tokio::task::spawn_blocking(move || f2b::store::StoreHandle::spawn_or_recover(&dir))
                .await??;
        if let Some(r) = &recovered {
            // Keep protecting on an empty state; say so loudly (the cause and the kept file).
            error!(F2B_STATE_MOVED_TO = %r.moved_to.display(), "{r}");
            notice = Some(format!(
                "the state database was damaged and moved to {}; started with an empty state",
                r.moved_to.display()
            ));
        }
        info!(
            bans = snap.bans.len(),
            cursor = snap.cursor.is_some(),
            "state loaded from {}",
            settings.daemon.state_dir.display()
        );
        (Some(h), Some(snap))
    };
    let fleet = fleet(&settings).await?;
    let fleet_applied = fleet.as_ref().map(|f| f.applied(snapshot.as_ref()));
    // The actions' sinks (issue 16) and the fleet's, fed from the outbox; always there, so
    // that a reload can add actions. Messages left from the last run are handed over by the
    // engine at start.
    let outbox = outbox(&settings, fleet.as_ref(), store.clone())?;
    let (ready_tx, mut ready_rx) = watch::channel(false);
    let (status_tx, mut status_rx) = watch::channel(String::new());
    let watchdog = sd_notify::watchdog_enabled();
    let (tick_tx, mut tick_rx) = mpsc::channel(4);
    let opts = EngineOptions {
        load,
        source: SourceConfig {
            spec,
            start,
            follow: !(args.no_follow || args.oneshot),
            batch: 4096,
        },
        firewall,
        ready: Some(ready_tx),
        status: Some(status_tx),
        // Without a watchdog nothing needs the ticks: an idle f2bd then never wakes up.
        tick: watchdog.map(|d| (d / 2, tick_tx)),
        store,
        snapshot,
        resume,
        firewall_events: Some(fw_rx),
        notice,
        outbox: Some(outbox),
        host: (fleet.as_ref()).map_or_else(f2b::system::host_name, |f| f.host.clone()),
        fleet: fleet.as_ref().map(|f| f.status.clone()),
    };
    let jails: Vec<String> = settings.enabled_jails().map(|j| j.name.clone()).collect();
    let (engine, handle, cmds) = Engine::new(settings, opts);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut engine_task = tokio::spawn(engine.run(cmds, stop_rx));
    if let (Some(f), Some(applied)) = (&fleet, fleet_applied) {
        f.start(handle.clone(), applied);
    }

    tokio::spawn(async move {
        while status_rx.changed().await.is_ok() {
            let s = status_rx.borrow().clone();
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Status(&s)]);
        }
    });
    // Watchdog pings come from the engine loop's own ticks: a stuck engine stops them.
    tokio::spawn(async move {
        while tick_rx.recv().await.is_some() {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
        }
    });
    // The control plane: org.f2b on the chosen bus ("none": no D-Bus).
    let dbus = match args.bus.0 {
        None => None,
        Some(bus) => match f2b::dbus::serve(bus, handle.clone()).await {
            Ok(server) => Some(server),
            Err(e) => {
                let _ = stop_tx.send(true);
                let _ = engine_task.await;
                return Err(e.into());
            }
        },
    };
    // Prometheus metrics, only on a socket systemd passed (f2b-metrics.socket).
    f2b::metrics::serve(f2b::metrics::listen_fds(), handle.clone());
    // SIGTERM and SIGHUP are handled before READY=1 can be sent: a stop right after READY must
    // not kill f2bd by the signal's default action.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    // systemd notifications: READY once bans are restored, the journal is being read and
    // org.f2b is on the bus (so `Type=notify` ordering also covers D-Bus clients).
    tokio::spawn(async move {
        while !*ready_rx.borrow_and_update() {
            if ready_rx.changed().await.is_err() {
                return;
            }
        }
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    });
    info!(
        MESSAGE_ID = MSGID_START,
        jails = jails.join(","),
        "f2bd {} started with {} jail(s): {}",
        env!("CARGO_PKG_VERSION"),
        jails.len(),
        jails.join(", ")
    );

    let result = loop {
        tokio::select! {
            r = &mut engine_task => break r,
            _ = tokio::signal::ctrl_c() => { let _ = stop_tx.send(true); }
            _ = term.recv() => { let _ = stop_tx.send(true); }
            _ = hup.recv() => {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Reloading]);
                if let Err(e) = handle.reload().await {
                    warn!(error = %e, "reload refused, keeping the running configuration: {e}");
                }
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
            }
        }
    };
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    info!(MESSAGE_ID = MSGID_STOP, "f2bd stopping");
    if let Some(server) = dbus {
        server.shutdown().await;
    }
    result??;
    Ok(())
}

/// `[fleet]` (issue 17), connecting in the background.
async fn fleet(settings: &config::Settings) -> anyhow::Result<Option<f2b::fleet::Fleet>> {
    Ok(f2b::fleet::Fleet::connect(settings, &f2b::system::host_name()).await?)
}

/// The outbox and its sinks: the actions' (`[action.NAME]`) and the fleet's.
fn outbox(
    settings: &config::Settings,
    fleet: Option<&f2b::fleet::Fleet>,
    store: Option<f2b::store::StoreHandle>,
) -> anyhow::Result<f2b::outbox::OutboxHandle> {
    let mut sinks = f2b::action::sinks(settings)?;
    sinks.extend(fleet.map(|f| f.sink()));
    Ok(f2b::outbox::Deliverer::spawn(sinks, store))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn arguments_parse() {
        Args::command().debug_assert();
        let a = Args::try_parse_from(["f2bd"]).unwrap();
        assert_eq!(a.bus, ServeOn(Some(BusSpec::System)));
        assert_eq!(a.config.config, None);
        let a = Args::try_parse_from([
            "f2bd",
            "--bus",
            "none",
            "--since",
            "1h",
            "--config",
            "/x.toml",
            "--filter-dir",
            "/f",
        ])
        .unwrap();
        assert_eq!(a.bus, ServeOn(None));
        assert_eq!(a.since, Some(Duration::from_secs(3600)));
        assert_eq!(a.config.filters.filter_dirs, [PathBuf::from("/f")]);
        assert!(Args::try_parse_from(["f2bd", "--since", "soon"]).is_err());
    }
}
