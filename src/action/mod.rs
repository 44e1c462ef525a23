//! Actions (issue 16): what `[action.NAME]` does with the outbox's messages, one sink type
//! per module — [`webhook`], [`command`], [`mail`], [`abuseipdb`] — and [`http`], what the
//! HTTP ones share. [`sinks`] builds them from the configuration; [`changes`] says which
//! to restart and which to stop when a reload changed them.

pub mod abuseipdb;
pub mod command;
mod http;
pub mod mail;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{ActionConfig, ActionKind, Settings};
use crate::outbox::Sink;

/// Errors while building an action's sink.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("action {0}: not of the type asked for")]
    Kind(String),
    #[error("action {0}: {1}")]
    Invalid(String, String),
    #[error("HTTP client: {0}")]
    Http(String),
}

/// The sink of one action.
pub fn sink(cfg: &ActionConfig, settings: &Settings) -> Result<Arc<dyn Sink>, ActionError> {
    Ok(match cfg.kind {
        ActionKind::Webhook { .. } => Arc::new(webhook::Webhook::new(cfg)?),
        ActionKind::Command { .. } => Arc::new(command::Command::new(cfg)?),
        ActionKind::Mail { .. } => Arc::new(mail::Mail::new(cfg)?),
        ActionKind::AbuseIpdb { .. } => Arc::new(abuseipdb::AbuseIpdb::new(cfg, settings)?),
    })
}

/// The sinks of every configured action.
pub fn sinks(settings: &Settings) -> Result<Vec<Arc<dyn Sink>>, ActionError> {
    (settings.actions.values())
        .map(|a| sink(a, settings))
        .collect()
}

/// What a reload changes in the actions.
pub struct Changes {
    /// Sinks to (re)start: new actions, and changed ones.
    pub start: Vec<Arc<dyn Sink>>,
    /// Actions that are gone.
    pub gone: Vec<String>,
}

/// From `old` to `new`. Unchanged actions keep running (a digest in progress goes on).
pub fn changes(
    old: &BTreeMap<String, ActionConfig>,
    new: &Settings,
) -> Result<Changes, ActionError> {
    let mut start = Vec::new();
    for (name, cfg) in &new.actions {
        let same = old.get(name).is_some_and(|o| {
            let mut o = o.clone();
            o.loc = cfg.loc.clone();
            o == *cfg
        });
        // AbuseIPDB's categories follow the jails' filters: rebuilt on every reload.
        let abuseipdb = matches!(cfg.kind, ActionKind::AbuseIpdb { .. });
        if !same || abuseipdb {
            start.push(sink(cfg, new)?);
        }
    }
    let gone = (old.keys())
        .filter(|n| !new.actions.contains_key(*n))
        .cloned()
        .collect();
    Ok(Changes { start, gone })
}
