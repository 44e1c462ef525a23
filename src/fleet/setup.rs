//! Putting the fleet together in the daemon: connect, the outbox sink, the consumer task.

use std::sync::Arc;

use super::consume::{self, Consumer};
use super::nats::NatsBus;
use super::policy::Policy;
use super::publish::FleetSink;
use super::{position, Bus, FleetError, Status};
use crate::config::{FleetConfig, Settings};
use crate::engine::EngineHandle;
use crate::outbox::Sink;
use crate::store::Snapshot;

/// A configured fleet, connected (or connecting: NATS may be down at start).
pub struct Fleet {
    cfg: FleetConfig,
    /// This host's name in the fleet.
    pub host: String,
    bus: Arc<dyn Bus>,
    pub status: Status,
}

impl Fleet {
    /// The fleet of `settings` (`None` without `[fleet]`); `system_host` is the system's host
    /// name (the default of `host`).
    pub async fn connect(
        settings: &Settings,
        system_host: &str,
    ) -> Result<Option<Fleet>, FleetError> {
        let Some(cfg) = settings.fleet.clone() else {
            return Ok(None);
        };
        let host = cfg.host_or(system_host).map_err(FleetError::Config)?;
        let status = Status::new(&host, &cfg.stream, &cfg.servers);
        let bus = NatsBus::connect(&cfg, &host, status.clone()).await?;
        tracing::info!(
            F2B_FLEET_HOST = %host,
            "fleet: sharing bans as {host} through {} (stream {})",
            cfg.servers.join(", "),
            cfg.stream
        );
        Ok(Some(Fleet {
            cfg,
            host,
            bus: Arc::new(bus),
            status,
        }))
    }

    /// The outbox sink that publishes this host's decisions.
    pub fn sink(&self) -> Arc<dyn Sink> {
        Arc::new(FleetSink::new(self.bus.clone(), self.status.clone()))
    }

    /// The stream sequence applied before (stored with the bans), from the state loaded.
    pub fn applied(&self, snapshot: Option<&Snapshot>) -> u64 {
        (snapshot.and_then(|s| s.positions.get(&position(&self.cfg.stream))))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Start reading the peers' decisions after sequence `applied`.
    pub fn start(&self, engine: EngineHandle, applied: u64) -> tokio::task::JoinHandle<()> {
        consume::spawn(Consumer {
            bus: self.bus.clone(),
            engine,
            policy: Policy::new(self.cfg.clone(), self.host.clone()),
            status: self.status.clone(),
            position: position(&self.cfg.stream),
            applied,
        })
    }
}
