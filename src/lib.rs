//! # f2b
//!
//! A journald-native, systemd-integrated intrusion prevention daemon: the successor of
//! fail2ban for hosts that run systemd. It reads the systemd journal through sd-journal,
//! matches failures with linear-time regexes, counts them per address in jails, and bans by
//! programming its own nftables table over netlink, with per-element kernel timeouts.
//!
//! # Layout
//!
//! The data path reads in module names:
//!
//! ```text
//! source (journal reader thread) ─▶ filter (RegexSet per jail) ─▶ engine ─▶ jail (windows, decisions)
//!                                                                   │
//!            dbus (control plane, zbus) ──Command──▶ engine ─────────┼─▶ store (SQLite: bans, history, cursor)
//!                                                                   └─▶ firewall (nftables worker thread)
//! ```
//!
//! - [`config`]: TOML configuration in stages (raw with spans → merged drop-ins → validated
//!   [`config::Settings`]); every error names file, line and key.
//! - [`source`]: ONE sd-journal reader thread for all jails: the routes' matches in sd-journal,
//!   routing by trusted fields ([`filter::matches`]), filtering, cursors, follow mode that
//!   survives rotation and does not wait for journald's notifications during an attack
//!   ([`source::wait`]); [`source::syslog`] parses syslog text; [`source::export`] makes real
//!   journal files for tests and demos.
//! - [`filter`]: filter files (TOML), trusted journal matches, `<HOST>` expansion, modes,
//!   sessions (correlation, one attempt counted once), samples; the built-in library.
//! - [`jail`]: failure windows per address, ban decisions, incremental ban times, history.
//!   Pure logic on the journal clock.
//! - [`engine`]: the one task that owns jail and ban state; [`engine::api`] is its message API.
//! - [`firewall`]: the enforcement seam ([`firewall::Firewall`]), the nftables backend and a
//!   dry-run backend, on a worker thread.
//! - [`dbus`]: the `org.f2b` control plane (zbus): validates, authorizes (root, or polkit on
//!   the caller) and forwards calls to the engine; engine events become signals.
//! - [`cli`]: the `f2b` command line (clap definitions, D-Bus client commands, rendering) and
//!   the configuration options `f2bd` shares.
//! - [`store`]: SQLite persistence (bans, history, positions, open windows, totals), moved
//!   aside and restarted empty when damaged.
//! - [`feeds`]: blocklist feeds (`[feed.NAME]`): fetched off the engine loop (conditional GET,
//!   last good copy on disk), enforced by the engine in interval sets of their own.
//! - [`outbox`]: messages about bans for actions and the fleet, written with the decisions,
//!   delivered by their own tasks with retries and bounds.
//! - [`fleet`]: bans shared with other f2b hosts through NATS JetStream: the outbox sink that
//!   publishes, the consumer that hands peers' decisions to the engine, the local limits.
//! - [`action`]: what `[action.NAME]` does with the outbox's messages: webhook, command, mail
//!   (digests), AbuseIPDB, one sink per module.
//! - [`import`]: `f2b import-fail2ban`: fail2ban's configuration, filters and database → f2b's.
//! - [`tester`]: `f2b test`, fail2ban-regex's equivalent, on the daemon's own code path.
//! - [`logging`]: tracing to the journal with structured `F2B_*` fields and MESSAGE_IDs.
//! - [`location`]: `file:line` for error messages.
//! - [`metrics`]: Prometheus text metrics on a socket passed by systemd (socket activation).
//! - [`system`]: facts about the host (services table, own addresses, user names) that the
//!   binaries read and hand to the pure modules.
//! - [`addr`], [`clock`]: address helpers (never-banned addresses, overlap) and µs time.
//!
//! `unsafe` is denied here and allowed only at FFI boundaries (libnftnl in
//! `firewall::nft::ffi`, two sd-journal calls in the reader, the sockets systemd passes),
//! each block with its SAFETY comment.
//!
//! Binaries: `f2bd` (the service) and `f2b` (the command-line tool) are thin layers over
//! this library.

#![deny(unsafe_code)]

pub mod action;
pub mod addr;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dbus;
pub mod engine;
pub mod feeds;
pub mod filter;
pub mod firewall;
pub mod fleet;
pub mod import;
pub mod jail;
pub mod location;
pub mod logging;
pub mod metrics;
pub mod outbox;
pub mod source;
pub mod store;
pub mod system;
pub mod tester;
