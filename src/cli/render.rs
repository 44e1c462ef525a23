//! Output for humans and scripts: tables, times, counts, JSON. Everything is written to a
//! `Write` and returns its error, so that a closed pipe ends a command instead of panicking.

use std::io::{self, Write};

use serde::Serialize;

/// A time (µs since the epoch) in the local time zone, `YYYY-MM-DD HH:MM:SS`, as journalctl
/// shows times. The zone comes from `TZ` or /etc/localtime (jiff reads the system's tzdata).
pub fn local_time(usec: u64) -> String {
    let ts = i64::try_from(usec)
        .ok()
        .and_then(|us| jiff::Timestamp::from_microsecond(us).ok());
    match ts {
        Some(ts) => ts
            .to_zoned_datetime(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string(),
        None => format!("@{}", usec / 1_000_000),
    }
}

/// The end of a ban: a local time, or "permanent" for 0.
pub fn until(end_usec: u64) -> String {
    if end_usec == 0 {
        "permanent".into()
    } else {
        local_time(end_usec)
    }
}

/// `1 jail`, `2 jails`.
pub fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

/// "enabled" / "disabled".
pub fn state(enabled: bool) -> &'static str {
    if enabled {
        "enabled"
    } else {
        "disabled"
    }
}

/// "-" for an empty text.
pub fn dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

/// Pretty JSON and a newline.
pub fn json<T: Serialize + ?Sized>(out: &mut dyn Write, v: &T) -> Result<(), super::CliError> {
    serde_json::to_writer_pretty(&mut *out, v).map_err(|e| {
        if e.is_io() {
            super::CliError::Output(e.into())
        } else {
            super::CliError::Json(e)
        }
    })?;
    writeln!(out)?;
    Ok(())
}

/// A plain text table with columns sized to their content.
pub struct Table {
    rows: Vec<Vec<String>>,
    indent: usize,
}

impl Table {
    pub fn new(head: &[&str]) -> Table {
        Table {
            rows: vec![head.iter().map(|s| s.to_string()).collect()],
            indent: 0,
        }
    }

    /// Indent every line by `n` spaces.
    pub fn indent(mut self, n: usize) -> Table {
        self.indent = n;
        self
    }

    pub fn row(&mut self, r: Vec<String>) {
        self.rows.push(r);
    }

    pub fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let cols = self.rows[0].len();
        let widths: Vec<usize> = (0..cols)
            .map(|c| {
                (self.rows.iter())
                    .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for r in &self.rows {
            let mut line = " ".repeat(self.indent);
            for (c, cell) in r.iter().enumerate() {
                if c + 1 == r.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// `label:` padded to a column, then the value: the `f2b status JAIL` layout.
pub fn field(out: &mut dyn Write, label: &str, value: &str) -> io::Result<()> {
    let line = format!("{:<FIELD$}{value}", format!("{label}:"));
    writeln!(out, "{}", line.trim_end())
}

/// Width of the label column of [`field`].
pub const FIELD: usize = 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(local_time(0).len(), 19);
        assert_eq!(local_time(1_700_000_000_000_000).len(), 19);
        assert_eq!(until(0), "permanent");
        assert_eq!(local_time(u64::MAX), format!("@{}", u64::MAX / 1_000_000));
    }

    #[test]
    fn words() {
        assert_eq!(count(1u32, "jail", "jails"), "1 jail");
        assert_eq!(count(2u32, "jail", "jails"), "2 jails");
        assert_eq!(count(0u32, "ban", "bans"), "0 bans");
    }

    #[test]
    fn tables_align() {
        let mut t = Table::new(&["A", "BB"]).indent(2);
        t.row(vec!["xxx".into(), "y".into()]);
        let mut out = Vec::new();
        t.write(&mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "  A    BB\n  xxx  y\n");
    }
}
