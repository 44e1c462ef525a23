//! Journal Export Format writer: makes real journal files with `systemd-journal-remote`.
//!
//! Used by the tests, the benchmark and `f2b demo-journal`: entries are written in the export
//! format (binary-safe for values with newlines) and piped to
//! `systemd-journal-remote -o DIR/NAME.journal -`, which writes genuine journal files (and
//! rotates them when large), read afterwards through the same sd-journal code path as the live
//! journal. Trusted fields such as `_SYSTEMD_UNIT` and `_PID` are kept as given.

use std::io::{self, Write};
use std::path::Path;
use std::process::{Command, Stdio};

/// Where Debian installs the tool (package systemd-journal-remote).
pub const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";

/// Boot id used for generated entries.
const BOOT_ID: &str = "0f2b0f2b0f2b0f2b0f2b0f2b0f2b0f2b";

/// One entry: its realtime and its fields (e.g. `MESSAGE`, `_SYSTEMD_UNIT`, `_PID`).
#[derive(Debug, Clone)]
pub struct ExportEntry {
    pub realtime_us: u64,
    pub fields: Vec<(String, String)>,
}

impl ExportEntry {
    pub fn new(realtime_us: u64) -> Self {
        ExportEntry {
            realtime_us,
            fields: Vec::new(),
        }
    }

    pub fn field(mut self, k: &str, v: impl Into<String>) -> Self {
        self.fields.push((k.to_string(), v.into()));
        self
    }

    /// Replace a field's value (or add it); `None` removes it.
    pub fn set(mut self, k: &str, v: Option<&str>) -> Self {
        self.fields.retain(|(f, _)| f != k);
        if let Some(v) = v {
            self.fields.push((k.to_string(), v.to_string()));
        }
        self
    }

    /// What a local user gets with `logger -t IDENT MSG` from a session or a user unit
    /// (`user_unit`), or from no unit at all: the identifier is forged, the trusted fields are
    /// the user's.
    pub fn forged(
        realtime_us: u64,
        uid: u32,
        user_unit: Option<&str>,
        ident: &str,
        msg: &str,
    ) -> Self {
        let mut e = ExportEntry::new(realtime_us)
            .field("_UID", uid.to_string())
            .field("_GID", uid.to_string())
            .field("_COMM", "logger")
            .field("_EXE", "/usr/bin/logger")
            .field("_TRANSPORT", "syslog")
            .field("SYSLOG_IDENTIFIER", ident)
            .field("_PID", "31337");
        if let Some(u) = user_unit {
            e = e
                .field("_SYSTEMD_UNIT", format!("user@{uid}.service"))
                .field("_SYSTEMD_USER_UNIT", u);
        }
        e.field("MESSAGE", msg)
    }

    /// A typical message of a system service running as root, with the trusted fields
    /// journald would add: unit, uid 0, the program name (`_COMM`, cut to 15 bytes like the
    /// kernel's), pid; then the identifier and message the process wrote.
    pub fn service(realtime_us: u64, unit: &str, ident: &str, pid: u32, msg: &str) -> Self {
        let comm: String = ident.chars().take(15).collect();
        ExportEntry::new(realtime_us)
            .field("_SYSTEMD_UNIT", unit)
            .field("_UID", "0")
            .field("_COMM", comm)
            .field("_TRANSPORT", "syslog")
            .field("SYSLOG_IDENTIFIER", ident)
            .field("_PID", pid.to_string())
            .field("_HOSTNAME", "demo")
            .field("PRIORITY", "6")
            .field("MESSAGE", msg)
    }

    /// Write in Journal Export Format. The monotonic timestamp follows the realtime (all
    /// generated entries share one boot id, and sd-journal orders same-boot entries by it), so
    /// entries appended later sort after earlier ones, as on a real host.
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        writeln!(w, "__REALTIME_TIMESTAMP={}", self.realtime_us)?;
        writeln!(w, "__MONOTONIC_TIMESTAMP={}", self.realtime_us.max(1))?;
        writeln!(w, "_BOOT_ID={BOOT_ID}")?;
        for (k, v) in &self.fields {
            if v.contains('\n') {
                w.write_all(k.as_bytes())?;
                w.write_all(b"\n")?;
                w.write_all(&(v.len() as u64).to_le_bytes())?;
                w.write_all(v.as_bytes())?;
                w.write_all(b"\n")?;
            } else {
                writeln!(w, "{k}={v}")?;
            }
        }
        w.write_all(b"\n")
    }
}

/// Append `entries` to the journal file `path` (which must end in `.journal`), creating it
/// and its directory as needed. Large inputs rotate into more files in the same directory.
pub fn write_journal(
    path: &Path,
    entries: impl IntoIterator<Item = ExportEntry>,
) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut child = Command::new(JOURNAL_REMOTE)
        .arg("-o")
        .arg(path)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{JOURNAL_REMOTE}: {e} (install the systemd-journal-remote package)"),
            )
        })?;
    {
        let stdin = child.stdin.take().expect("piped");
        let mut w = io::BufWriter::with_capacity(1 << 20, stdin);
        for e in entries {
            e.write_to(&mut w)?;
        }
        w.flush()?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "systemd-journal-remote failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Deterministic synthetic traffic: `n` entries from `start_us`, one every `step_us`. About
/// half are sshd (`_SYSTEMD_UNIT=sshd.service`), a tenth of those failures from `attackers`
/// distinct addresses (203.0.113.0/24 and 2001:db8::/32 style), the rest other units.
pub fn synthetic(
    n: usize,
    start_us: u64,
    step_us: u64,
    attackers: u32,
) -> impl Iterator<Item = ExportEntry> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..n).map(move |i| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let t = start_us + i as u64 * step_us;
        let pid = 1000 + (x % 30000) as u32;
        if i % 2 == 0 {
            let k = (x >> 20) % 20;
            let msg = if k < 2 {
                let a = (x >> 32) as u32 % attackers.max(1);
                let addr = if a % 5 == 4 {
                    format!("2001:db8:{:x}:{:x}::{:x}", a >> 16, a & 0xffff, 1 + (x >> 8) % 200)
                } else {
                    format!("{}.{}.{}.{}", 100 + (a >> 16) % 100, (a >> 8) & 0xff, a & 0xff, 1 + a % 250)
                };
                if k == 0 {
                    format!("Failed password for root from {addr} port {} ssh2", 1024 + x % 60000)
                } else {
                    format!("Invalid user admin from {addr} port {}", 1024 + x % 60000)
                }
            } else if k < 6 {
                format!("Accepted publickey for deploy from 192.0.2.{} port {} ssh2: ED25519 SHA256:abc", 1 + x % 200, 1024 + x % 60000)
            } else if k < 12 {
                "pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)".to_string()
            } else {
                format!("Received disconnect from 192.0.2.{} port {}:11: disconnected by user", 1 + x % 200, 1024 + x % 60000)
            };
            ExportEntry::service(t, "sshd.service", "sshd", pid, &msg)
        } else {
            let (unit, ident, msg) = match (x >> 40) % 4 {
                0 => ("nginx.service", "nginx", format!("GET /index.html 200 {}", x % 10000)),
                1 => ("cron.service", "CRON", "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)".to_string()),
                2 => ("systemd-logind.service", "systemd-logind", format!("New session {} of user deploy.", x % 1000)),
                _ => ("postgresql.service", "postgres", format!("checkpoint complete: wrote {} buffers", x % 500)),
            };
            ExportEntry::service(t, unit, ident, pid, &msg)
        }
    })
}
