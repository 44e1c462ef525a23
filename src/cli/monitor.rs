//! `f2b monitor`: the `Banned`/`Unbanned` signals as lines, until Ctrl-C or until standard
//! output is closed. f2bd leaving and coming back is said on standard error.

use std::future::poll_fn;
use std::pin::Pin;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use zbus::export::futures_core::Stream;

use super::client::Client;
use super::daemon::Out;
use super::render::local_time;
use super::CliError;
use crate::dbus::{BUS_NAME, MANAGER_IFACE, MANAGER_PATH};

pub async fn monitor(c: &Client, out: Out<'_>) -> Result<(), CliError> {
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender(BUS_NAME)
        .interface(MANAGER_IFACE)
        .path(MANAGER_PATH)
        .build()?;
    let mut signals = zbus::MessageStream::for_match_rule(rule, &c.conn, None).await?;
    let dbus = zbus::fdo::DBusProxy::new(&c.conn).await?;
    let mut owners = dbus
        .receive_name_owner_changed_with_args(&[(0, BUS_NAME)])
        .await?;
    eprintln!("monitoring {BUS_NAME} on the {} (Ctrl-C to stop)", c.bus);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            msg = next(&mut signals) => {
                let Some(msg) = msg else {
                    return Err(CliError::Gone("the bus connection closed".into()));
                };
                if let Some(line) = signal_line(&msg?, out.json) {
                    writeln!(out.w, "{line}")?;
                    out.w.flush()?;
                }
            }
            owner = next(&mut owners) => {
                let Some(sig) = owner else { continue };
                if let Ok(args) = sig.args() {
                    if args.new_owner().is_some() {
                        eprintln!("f2bd started");
                    } else {
                        eprintln!("f2bd stopped; waiting for it to come back");
                    }
                }
            }
        }
    }
}

/// One signal as a line of text or JSON; `None` for other signals.
fn signal_line(msg: &zbus::Message, json: bool) -> Option<String> {
    let hdr = msg.header();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    match hdr.member().map(|m| m.as_str()) {
        Some("Banned") => {
            let (jail, address, until) = msg.body().deserialize::<(String, String, u64)>().ok()?;
            Some(if json {
                json!({"event": "banned", "time_usec": now, "jail": jail,
                       "address": address, "until_usec": until})
                .to_string()
            } else {
                let until = match until {
                    0 => "permanently".to_string(),
                    t => format!("until {}", local_time(t)),
                };
                format!("{} banned   {jail} {address} {until}", local_time(now))
            })
        }
        Some("Unbanned") => {
            let (jail, address) = msg.body().deserialize::<(String, String)>().ok()?;
            Some(if json {
                json!({"event": "unbanned", "time_usec": now, "jail": jail, "address": address})
                    .to_string()
            } else {
                format!("{} unbanned {jail} {address}", local_time(now))
            })
        }
        _ => None,
    }
}

/// The next item of a stream (without pulling in a stream-extension crate).
async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
}
