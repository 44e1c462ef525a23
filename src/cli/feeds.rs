//! `f2b feeds`: the blocklist feeds f2bd enforces (and `--refresh`: fetch them now).

use super::daemon::Out;
use super::render::{self, dash, local_time, Table};
use super::{client::Client, CliError};
use crate::dbus::FeedRecord;

/// A time, or "-" for never.
fn when(usec: u64) -> String {
    if usec == 0 {
        "-".into()
    } else {
        local_time(usec)
    }
}

/// `f2b feeds [--refresh] [FEED]`.
pub async fn feeds(
    c: &Client,
    name: Option<String>,
    refresh: bool,
    out: Out<'_>,
) -> Result<(), CliError> {
    let m = c.manager().await?;
    if refresh {
        m.refresh_feeds(name.as_deref().unwrap_or_default()).await?;
    }
    let mut list: Vec<FeedRecord> = m.get_feeds().await?;
    if let Some(name) = &name {
        list.retain(|f| f.name == *name);
        if list.is_empty() {
            return Err(CliError::Usage(format!("no such feed: {name}")));
        }
    }
    if out.json {
        return render::json(out.w, &list);
    }
    if list.is_empty() {
        writeln!(out.w, "no feeds configured")?;
        return Ok(());
    }
    let mut t = Table::new(&[
        "FEED",
        "IPV4",
        "IPV6",
        "ELEMENTS",
        "LAST FETCH",
        "LAST CHANGE",
        "NEXT REFRESH",
        "BAD LINES",
        "SOURCE",
    ]);
    for f in &list {
        t.row(vec![
            f.name.clone(),
            f.entries_v4.to_string(),
            f.entries_v6.to_string(),
            f.elements.to_string(),
            when(f.last_fetch_usec),
            when(f.last_change_usec),
            when(f.next_refresh_usec),
            f.bad_lines.to_string(),
            format!("{} ({})", dash(&f.source), f.format),
        ]);
    }
    t.write(out.w)?;
    for f in &list {
        if !f.last_error.is_empty() {
            writeln!(out.w, "{}: error: {}", f.name, f.last_error)?;
        }
        for b in &f.bad_examples {
            writeln!(out.w, "{}: bad {b}", f.name)?;
        }
    }
    Ok(())
}
