//! `f2b fleet`: the fleet as this host sees it (`GetFleet`): connection, lag, peers, the last
//! decisions received, refusals.

use serde_json::json;

use super::client::Client;
use super::daemon::Out;
use super::render::{self, dash, field, local_time, Table};
use super::CliError;

/// `f2b fleet`.
pub async fn fleet(c: &Client, out: Out<'_>) -> Result<(), CliError> {
    let (
        configured,
        host,
        stream,
        servers,
        connected,
        last,
        applied,
        published,
        peers,
        refused,
        recent,
    ) = c.manager().await?.get_fleet().await?;
    let lag = last.saturating_sub(applied);
    if out.json {
        let peers: Vec<_> = (peers.iter())
            .map(|(h, seen, ok, no)| json!({"host": h, "last_seen_usec": seen, "applied": ok, "refused": no}))
            .collect();
        let recent: Vec<_> = (recent.iter())
            .map(|(t, h, e, j, a, o)| json!({"time_usec": t, "host": h, "event": e, "jail": j, "address": a, "outcome": o}))
            .collect();
        return render::json(
            out.w,
            &json!({
                "configured": configured, "host": host, "stream": stream, "servers": servers,
                "connected": connected, "last_seq": last, "applied_seq": applied, "lag": lag,
                "published": published, "peers": peers, "refused": refused, "recent": recent,
            }),
        );
    }
    let w = out.w;
    if !configured {
        writeln!(w, "no fleet configured (see [fleet] in f2b.toml(5))")?;
        return Ok(());
    }
    field(w, "Host", &host)?;
    field(w, "Servers", &servers.join(", "))?;
    field(
        w,
        "Connection",
        if connected {
            "connected"
        } else {
            "DISCONNECTED"
        },
    )?;
    field(
        w,
        "Stream",
        &format!("{stream}: sequence {last}, applied {applied}, lag {lag}"),
    )?;
    field(w, "Published", &published.to_string())?;
    let mut why: Vec<String> = refused.iter().map(|(r, n)| format!("{r} {n}")).collect();
    why.sort();
    field(w, "Refused", &dash(&why.join(", ")))?;
    writeln!(w)?;
    if peers.is_empty() {
        writeln!(w, "no peer seen yet")?;
    } else {
        let mut t = Table::new(&["PEER", "LAST SEEN", "APPLIED", "REFUSED"]);
        for (h, seen, ok, no) in &peers {
            t.row(vec![
                h.clone(),
                local_time(*seen),
                ok.to_string(),
                no.to_string(),
            ]);
        }
        t.write(w)?;
    }
    if !recent.is_empty() {
        writeln!(w)?;
        let mut t = Table::new(&["RECEIVED", "PEER", "EVENT", "JAIL", "ADDRESS", "OUTCOME"]);
        for (time, h, e, j, a, o) in recent.iter().rev() {
            t.row(vec![
                local_time(*time),
                h.clone(),
                e.clone(),
                j.clone(),
                a.clone(),
                o.clone(),
            ]);
        }
        t.write(w)?;
    }
    Ok(())
}
