//! The one test harness of the integration tests: every test binary includes it with
//! `mod common;` and takes what it needs. One module per job:
//!
//! - [`root`]: root and tool checks (tests that need them print why they skip), paths;
//! - [`wait`]: wait for a condition instead of sleeping;
//! - [`journal`]: real journal files made with `systemd-journal-remote`, test configs;
//! - [`engine`]: the engine in-process (dry-run firewall by default);
//! - [`netns`]: private network namespaces, a veth pair between a server and an attacker;
//! - [`probe`]: TCP listeners and connects across that pair;
//! - [`http`]: raw HTTP requests for attacks on real web servers;
//! - [`receiver`]: a recording HTTP server (webhook endpoints, APIs) with scripted answers;
//! - [`bus`]: a private, system-like `dbus-daemon`;
//! - [`f2bd`]: the real `f2bd` process, ready when it says READY=1 on a notify socket;
//! - [`cgroup`]: a cgroup subtree of a test, where journald sees processes as units;
//! - [`journald`]: a private `systemd-journald` that real services log to, as their units;
//! - [`logrotate`]: the real `logrotate` run on a test's log files.
//!
//! Everything started here is stopped and removed on drop, also when a test panics.

// Each test binary uses a part of the harness.
#![allow(dead_code, unused_imports)]

pub mod bus;
pub mod cgroup;
pub mod engine;
pub mod f2bd;
pub mod http;
pub mod journal;
pub mod journald;
pub mod logrotate;
pub mod nats;
pub mod netns;
pub mod probe;
pub mod receiver;
pub mod root;
pub mod wait;

pub use bus::PrivateBus;
pub use engine::{start, start_edited, start_full, start_stored, start_with, Running};
pub use f2bd::F2bd;
pub use journal::{append, fail, fixtures, load_opts, settings, ssh, web, S};
pub use netns::{NetNs, Pair};
pub use probe::{connect, connect_within, listen, Outcome, BLOCKED_AFTER};
pub use receiver::Receiver;
pub use root::{chmod, have, is_root, repo, root_and_tools_or_skip, root_or_skip, which};
pub use wait::{poll_for, poll_until, wait_for};
