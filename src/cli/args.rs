//! The command line of `f2b`, declared once (clap derive): f2b(1) and the shell completions
//! are generated from it. Options sit on the commands that use them; values are parsed here
//! (durations, addresses, jail names) with the bounds the daemon applies
//! ([`crate::config::limits`]), so a wrong value is a usage error naming the argument.
//! [`ConfigArgs`] is shared with `f2bd`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;

use crate::config::{self, limits, BanTime, LoadOptions, Services};
use crate::dbus::BusSpec;
use crate::filter::library::FilterLibrary;

/// f2b: journald-native intrusion prevention (see f2b(1)).
#[derive(Debug, Parser)]
#[command(name = "f2b", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// Where the filters come from.
#[derive(Debug, Clone, Default, Args)]
pub struct FilterArgs {
    /// Extra filter directory, searched after /usr/lib/f2b/filters and /etc/f2b/filters.
    #[arg(long = "filter-dir", value_name = "DIR")]
    pub filter_dirs: Vec<PathBuf>,
    /// Ignore /usr/lib/f2b/filters and /etc/f2b/filters (use only built-in and --filter-dir).
    #[arg(long)]
    pub no_system_filters: bool,
}

impl FilterArgs {
    /// The directories to load filters from, in search order.
    pub fn dirs(&self) -> Vec<PathBuf> {
        let mut d = if self.no_system_filters {
            Vec::new()
        } else {
            FilterLibrary::default_dirs()
        };
        d.extend(self.filter_dirs.iter().cloned());
        d
    }
}

/// Where the configuration comes from (`f2b` and `f2bd`).
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigArgs {
    /// Root configuration file; drop-ins are read from jail.d/ beside it (default
    /// /etc/f2b/f2b.toml; the shipped default configuration when it is absent).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub filters: FilterArgs,
}

impl ConfigArgs {
    /// The filter directories: the system's (unless --no-system-filters), the `filters/`
    /// folder beside --config, then every --filter-dir.
    pub fn filter_dirs(&self) -> Vec<PathBuf> {
        let mut d = if self.filters.no_system_filters {
            Vec::new()
        } else {
            FilterLibrary::default_dirs()
        };
        d.extend(self.config.as_deref().and_then(config::beside_filters));
        d.extend(self.filters.filter_dirs.iter().cloned());
        d
    }

    /// How to load the configuration, with the system's service names.
    pub fn load_options(&self, services: Services) -> LoadOptions {
        LoadOptions {
            config: (self.config.clone()).unwrap_or_else(|| PathBuf::from(config::DEFAULT_CONFIG)),
            // Without --config, a missing /etc/f2b/f2b.toml means "use the shipped default".
            allow_missing: self.config.is_none(),
            filter_dirs: self.filters.filter_dirs.clone(),
            no_system_filters: self.filters.no_system_filters,
            default_text: Some(config::DEFAULT_CONFIG_TEXT),
            services,
            os_ids: crate::system::os_ids(),
        }
    }
}

/// The bus of the daemon.
#[derive(Debug, Clone, Args)]
pub struct BusArgs {
    /// The bus f2bd serves org.f2b on: system, session, or a bus address.
    // Global: `f2b set JAIL maxretry 3 --bus …` takes it after the setting too.
    #[arg(long, value_name = "BUS", default_value = "system", value_parser = bus, global = true)]
    pub bus: BusSpec,
}

/// `--json`, on the commands that have JSON output.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct JsonArg {
    /// Machine-readable output (JSON).
    #[arg(long)]
    pub json: bool,
}

/// Every command: those that work without the daemon, then those that ask it.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    #[command(flatten)]
    Local(LocalCmd),
    #[command(flatten)]
    Daemon(DaemonCmd),
}

/// The commands that work without the daemon.
#[derive(Debug, Subcommand)]
pub enum LocalCmd {
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
    /// f2b check --config DIR/f2b.toml.
    ImportFail2ban(crate::import::ImportArgs),
    /// Validate the configuration and filters without running anything.
    Check {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        out: JsonArg,
    },
    /// Run a filter over a journal or text and report what it matches (like fail2ban-regex).
    Test(TestArgs),
    /// List the installed filters with their journal matches and modes.
    Filters {
        #[command(flatten)]
        filters: FilterArgs,
        #[command(flatten)]
        out: JsonArg,
    },
    /// Read f2b's nftables table directly from the kernel (root; works without the daemon).
    Firewall {
        #[command(subcommand)]
        cmd: FirewallCmd,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write a demonstration journal (sshd attacks among ordinary traffic) into DIR.
    DemoJournal {
        /// Directory to write demo.journal into (made if missing).
        dir: PathBuf,
        /// Number of entries.
        #[arg(long, default_value_t = 20_000)]
        entries: usize,
    },
}

/// The commands that ask f2bd over D-Bus.
#[derive(Debug, Subcommand)]
pub enum DaemonCmd {
    /// The jails with their counters, or one jail's settings, counters and bans.
    ///
    /// The table counts per jail: FAILING, the addresses with failures inside their find
    /// time; FAILURES, the failures inside those windows (what maxretry is compared with);
    /// TOTAL FAILURES, every failure since the jail started; BANNED, the active bans; TOTAL
    /// BANNED, the bans made since the jail started. With a JAIL, also what it enforces:
    /// ports, protocol, action, ignored addresses, prefix lengths and ban increments.
    Status {
        /// Show this jail in full.
        #[arg(value_parser = jail_name)]
        jail: Option<String>,
        #[command(flatten)]
        bus: BusArgs,
        #[command(flatten)]
        out: JsonArg,
    },
    /// Ban an address or prefix (CIDR) in a jail.
    Ban {
        /// The jail whose set gets the ban.
        #[arg(value_parser = jail_name)]
        jail: String,
        /// An address (203.0.113.9, 2001:db8::1) or a prefix (203.0.113.0/24, at least /8
        /// for IPv4 and /16 for IPv6).
        #[arg(value_parser = ban_target)]
        addr: IpNet,
        /// How long, e.g. "1h" or "2d" (default: the jail's ban time).
        #[arg(long = "for", value_name = "DURATION", value_parser = ban_duration)]
        for_: Option<Duration>,
        /// Ban a prefix even though it holds an address of the jail's ignoreip or one of this
        /// host's own addresses (a single such address is always refused).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        bus: BusArgs,
        #[command(flatten)]
        out: JsonArg,
    },
    /// Lift bans: `f2b unban [JAIL] ADDR…`, or every ban with `f2b unban --all [JAIL]`.
    Unban {
        /// Lift every ban (of JAIL, or of every jail).
        #[arg(long)]
        all: bool,
        /// Addresses or prefixes to unban, after an optional jail (default: every jail).
        #[arg(value_name = "[JAIL] ADDR", value_parser = unban_word)]
        words: Vec<UnbanWord>,
        #[command(flatten)]
        bus: BusArgs,
        #[command(flatten)]
        out: JsonArg,
    },
    /// Active bans of one jail or of all.
    Bans {
        /// Only this jail's bans.
        #[arg(value_parser = jail_name)]
        jail: Option<String>,
        #[command(flatten)]
        bus: BusArgs,
        #[command(flatten)]
        out: JsonArg,
    },
    /// Make f2bd re-read its configuration (the running one stays if the new one is broken).
    Reload {
        #[command(flatten)]
        bus: BusArgs,
        #[command(flatten)]
        out: JsonArg,
    },
    /// Print bans and unbans as they happen, until Ctrl-C.
    Monitor {
        #[command(flatten)]
        bus: BusArgs,
        #[command(flatten)]
        out: JsonArg,
    },
    /// Past bans of an address.
    History {
        /// A single address.
        #[arg(value_parser = single_address)]
        addr: IpAddr,
        #[command(flatten)]
        bus: BusArgs,
        #[command(flatten)]
        out: JsonArg,
    },
    /// Enable a configured jail at run time.
    Start {
        /// A jail of the configuration.
        #[arg(value_parser = jail_name)]
        jail: String,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// Disable a jail at run time.
    Stop {
        /// A running jail; its bans are lifted.
        #[arg(value_parser = jail_name)]
        jail: String,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// Change maxretry, findtime or bantime of a running jail (until the next reload).
    Set {
        /// A running jail.
        #[arg(value_parser = jail_name)]
        jail: String,
        #[command(subcommand)]
        setting: Setting,
        #[command(flatten)]
        bus: BusArgs,
    },
    /// The blocklist feeds: entries, elements in the firewall, fetch times, bad lines, errors.
    ///
    /// ELEMENTS counts the ranges in the firewall (entries merged, ignored and own addresses
    /// cut out). With --refresh, f2bd fetches the feeds (or FEED) first, with a conditional
    /// request, and the list is shown once what they brought is enforced.
    Feeds {
        /// Fetch now (root or polkit), and wait until it is enforced.
        #[arg(long)]
        refresh: bool,
        /// Only this feed.
        #[arg(value_name = "FEED")]
        name: Option<String>,
        #[command(flatten)]
        bus: BusArgs,
        #[command(flatten)]
        out: JsonArg,
    },
    /// The fleet (bans shared with other hosts through NATS): connection, lag (stream messages
    /// not applied here yet), peers with when each was last seen, the decisions received
    /// lately and what was refused, by reason.
    Fleet {
        #[command(flatten)]
        bus: BusArgs,
        #[command(flatten)]
        out: JsonArg,
    },
}

/// `f2b test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Filter name or path to a filter file, optionally with `:MODE`.
    pub filter: String,
    /// Journal directory, journal file, syslog text file (auth.log…), text file of MESSAGE
    /// lines, or `-` for stdin (default: the system journal).
    pub source: Option<String>,
    /// Print the lines given to the filter that no failregex matched (like fail2ban-regex's
    /// --print-all-missed), at most 1000.
    #[arg(long, conflicts_with = "samples")]
    pub show_missed: bool,
    /// Read the journal files of this directory (as SOURCE does for a directory).
    #[arg(long, value_name = "DIR", conflicts_with = "source")]
    pub journal_dir: Option<PathBuf>,
    /// Do not apply the filter's journal matches (read every unit).
    #[arg(long)]
    pub all_units: bool,
    /// Replay this jail of the configuration and print the bans it would make.
    #[arg(long, value_name = "NAME", value_parser = jail_name)]
    pub jail: Option<String>,
    /// Check the filter's own sample file (built in, or given as SOURCE).
    #[arg(long, conflicts_with_all = ["journal_dir", "jail", "all_units"])]
    pub samples: bool,
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub out: JsonArg,
}

#[derive(Debug, Subcommand)]
pub enum FirewallCmd {
    /// List every banned element of every jail with its remaining time.
    Show {
        #[command(flatten)]
        out: JsonArg,
    },
    /// Delete f2b's table (every ban). The daemon, if running, re-creates it.
    Flush,
}

/// `f2b set JAIL SETTING VALUE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Setting {
    /// Failures within findtime that lead to a ban (1–1000000).
    Maxretry {
        /// A count.
        #[arg(value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        value: u32,
    },
    /// Time over which failures count, e.g. "10m".
    Findtime {
        /// A duration ("10m", "1h30m", or seconds).
        #[arg(value_parser = positive_duration)]
        value: Duration,
    },
    /// Ban length, e.g. "1h", or "forever".
    Bantime {
        /// A duration, or "forever" (also "permanent", -1).
        #[arg(value_parser = ban_time, allow_hyphen_values = true)]
        value: BanTime,
    },
}

/// One word of `f2b unban`: an address or prefix, or a jail name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnbanWord {
    Addr(IpNet),
    Jail(String),
}

/// What `f2b unban` lifts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnbanTarget {
    /// `None`: every jail.
    pub jail: Option<String>,
    /// Empty with `all`.
    pub addrs: Vec<IpNet>,
    pub all: bool,
}

impl UnbanTarget {
    /// `[JAIL] ADDR…` or, with `--all`, `[JAIL]`.
    pub fn from_words(words: &[UnbanWord], all: bool) -> Result<UnbanTarget, String> {
        let (jail, rest) = match words.split_first() {
            Some((UnbanWord::Jail(j), rest)) => (Some(j.clone()), rest),
            _ => (None, words),
        };
        let mut addrs = Vec::new();
        for w in rest {
            match w {
                UnbanWord::Addr(a) => addrs.push(*a),
                UnbanWord::Jail(j) => {
                    return Err(format!(
                        "{j:?} is not an address (a jail name goes first, once)"
                    ))
                }
            }
        }
        match (all, addrs.is_empty()) {
            (true, false) => Err("--all takes at most one jail and no addresses".into()),
            (false, true) => Err("give at least one address to unban (or --all)".into()),
            _ => Ok(UnbanTarget { jail, addrs, all }),
        }
    }
}

// Value parsers: clap shows their message after "invalid value 'X' for '<ARG>': ".

fn bus(s: &str) -> Result<BusSpec, String> {
    Ok(BusSpec::parse(s))
}

fn jail_name(s: &str) -> Result<String, String> {
    limits::jail_name(s)
        .map(str::to_string)
        .map_err(|e| e.to_string())
}

fn ban_target(s: &str) -> Result<IpNet, String> {
    limits::ban_target(s).map_err(|e| e.to_string())
}

fn single_address(s: &str) -> Result<IpAddr, String> {
    let net = limits::parse_net(s).map_err(|e| e.to_string())?;
    if net.prefix_len() != net.max_prefix_len() {
        return Err("a single address is expected, not a prefix".into());
    }
    Ok(net.addr())
}

fn unban_word(s: &str) -> Result<UnbanWord, String> {
    match (limits::ban_target(s), limits::jail_name(s)) {
        (Ok(net), _) => Ok(UnbanWord::Addr(net)),
        (Err(_), Ok(j)) => Ok(UnbanWord::Jail(j.to_string())),
        (Err(e), Err(_)) => Err(format!("neither an address nor a jail name ({e})")),
    }
}

/// A duration of at most ten years.
pub fn duration(s: &str) -> Result<Duration, String> {
    let d = config::parse_duration(s)?;
    limits::bounded_duration(d).map_err(|e| e.to_string())
}

fn positive_duration(s: &str) -> Result<Duration, String> {
    limits::positive_duration(config::parse_duration(s)?).map_err(|e| e.to_string())
}

/// `--for`: at least a second (0 would mean "the jail's ban time" on the bus).
fn ban_duration(s: &str) -> Result<Duration, String> {
    let d = positive_duration(s)?;
    if d.as_secs() == 0 {
        return Err("at least 1s (omit --for for the jail's ban time)".into());
    }
    Ok(d)
}

fn ban_time(s: &str) -> Result<BanTime, String> {
    match s.trim() {
        "-1" | "forever" | "permanent" => Ok(BanTime::Forever),
        _ => positive_duration(s).map(BanTime::For),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cmd, clap::Error> {
        Cli::try_parse_from(std::iter::once("f2b").chain(args.iter().copied())).map(|c| c.cmd)
    }

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn options_only_where_they_apply() {
        assert!(parse(&["test", "sshd", "--bus", "session"]).is_err());
        assert!(parse(&["start", "sshd", "--json"]).is_err());
        assert!(parse(&["status", "--bus", "session"]).is_ok());
        assert!(parse(&["set", "sshd", "maxretry", "3", "--bus", "session"]).is_ok());
        assert!(parse(&["--json", "status"]).is_err(), "no global options");
        assert!(parse(&["filters", "--config", "x"]).is_err());
        assert!(parse(&["check", "--config", "x", "--json"]).is_ok());
    }

    #[test]
    fn values_are_parsed_by_clap() {
        let Cmd::Daemon(DaemonCmd::Ban { addr, for_, .. }) =
            parse(&["ban", "sshd", "::ffff:203.0.113.9", "--for", "1h30m"]).unwrap()
        else {
            panic!()
        };
        assert_eq!(addr.to_string(), "203.0.113.9/32");
        assert_eq!(for_, Some(Duration::from_secs(5400)));
        for bad in [
            &["ban", "sshd", "203.0.113"][..],
            &["ban", "sshd", "0.0.0.0/0"],
            &["ban", "sshd", "1.2.3.4", "--for", "soon"],
            &["ban", "sshd", "1.2.3.4", "--for", "0"],
            &["ban", "a/b", "1.2.3.4"],
            &["history", "203.0.113.0/24"],
            &["set", "sshd", "maxretry", "0"],
            &["set", "sshd", "colour", "blue"],
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
        let Cmd::Daemon(DaemonCmd::Set { jail, setting, bus }) =
            parse(&["set", "sshd", "bantime", "forever"]).unwrap()
        else {
            panic!()
        };
        assert_eq!(jail, "sshd");
        assert_eq!(
            setting,
            Setting::Bantime {
                value: BanTime::Forever
            }
        );
        assert_eq!(bus.bus, BusSpec::System);
    }

    #[test]
    fn unban_words() {
        let t = |args: &[&str]| {
            let Cmd::Daemon(DaemonCmd::Unban { words, all, .. }) = parse(args).unwrap() else {
                panic!()
            };
            UnbanTarget::from_words(&words, all)
        };
        let a: IpNet = "203.0.113.9/32".parse().unwrap();
        assert_eq!(
            t(&["unban", "sshd", "203.0.113.9"]).unwrap(),
            UnbanTarget {
                jail: Some("sshd".into()),
                addrs: vec![a],
                all: false
            }
        );
        assert_eq!(t(&["unban", "203.0.113.9"]).unwrap().jail, None);
        assert_eq!(
            t(&["unban", "--all", "sshd"]).unwrap(),
            UnbanTarget {
                jail: Some("sshd".into()),
                addrs: vec![],
                all: true
            }
        );
        assert!(t(&["unban"]).is_err());
        assert!(t(&["unban", "sshd"]).is_err());
        assert!(t(&["unban", "--all", "a", "b"]).is_err());
        assert!(t(&["unban", "203.0.113.9", "sshd"]).is_err());
    }
}
