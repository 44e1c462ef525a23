//! [`Bus`] over NATS JetStream (async-nats): one connection, the stream `[fleet] stream`
//! (subjects `f2b.>`, created when missing), publish with `Nats-Msg-Id` and the server's
//! acknowledgement, and an ordered pull consumer from a stream sequence.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::{FutureExt, StreamExt};
use tracing::{info, warn};

use super::{BoxFuture, Bus, Decision, Feed, FleetError, Incoming, Status};
use crate::config::FleetConfig;

/// Messages handed over in one batch at most.
const BATCH: usize = 1000;
/// How long the server may take to answer a JetStream request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The JetStream bus.
pub struct NatsBus {
    js: jetstream::Context,
    client: async_nats::Client,
    stream: String,
    max_age: Duration,
    replicas: usize,
    /// The stream exists (made or found since the last connection).
    stream_ready: Arc<AtomicBool>,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> FleetError {
    FleetError::Unavailable(format!("{what}: {e}"))
}

impl NatsBus {
    /// Connect (in the background: f2bd starts, and protects, whether NATS is up or not).
    /// `status` follows the connection state.
    pub async fn connect(
        cfg: &FleetConfig,
        host: &str,
        status: Status,
    ) -> Result<NatsBus, FleetError> {
        let mut opts = async_nats::ConnectOptions::new()
            .name(format!("f2b {host}"))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(3))
            .request_timeout(Some(REQUEST_TIMEOUT))
            .reconnect_delay_callback(|n| Duration::from_millis((100 * n as u64).min(2000)));
        let a = &cfg.auth;
        if let Some(path) = &a.creds_file {
            opts = opts
                .credentials_file(path)
                .await
                .map_err(|e| FleetError::Config(format!("creds_file {path}: {e}")))?;
        }
        if let Some((user, file)) = &a.user {
            let pass = tokio::fs::read_to_string(file)
                .await
                .map_err(|e| FleetError::Config(format!("password_file {file}: {e}")))?;
            opts = opts.user_and_password(
                user.clone(),
                pass.trim_end_matches(['\n', '\r']).to_string(),
            );
        }
        if let Some((cert, key)) = &a.tls_cert {
            opts = opts
                .add_client_certificate(cert.into(), key.into())
                .require_tls(true);
        }
        if let Some(ca) = &a.tls_ca {
            opts = opts.add_root_certificates(ca.into()).require_tls(true);
        }
        let stream_ready = Arc::new(AtomicBool::new(false));
        let (ready, st) = (stream_ready.clone(), status.clone());
        opts = opts.event_callback(move |ev| {
            let (ready, st) = (ready.clone(), st.clone());
            async move {
                match ev {
                    async_nats::Event::Connected => {
                        info!("fleet: connected to NATS");
                        st.set_connected(true);
                    }
                    async_nats::Event::Disconnected => {
                        warn!("fleet: disconnected from NATS; local bans go on, shared ones wait");
                        ready.store(false, Ordering::SeqCst);
                        st.set_connected(false);
                    }
                    other => info!("fleet: NATS: {other}"),
                }
            }
        });
        let servers: Vec<async_nats::ServerAddr> = (cfg.servers.iter())
            .map(|s| {
                s.parse()
                    .map_err(|e| FleetError::Config(format!("server {s}: {e}")))
            })
            .collect::<Result<_, _>>()?;
        let client = opts
            .connect(servers)
            .await
            .map_err(|e| unavailable("connect", e))?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(REQUEST_TIMEOUT);
        Ok(NatsBus {
            js,
            client,
            stream: cfg.stream.clone(),
            max_age: cfg.max_bantime,
            replicas: cfg.replicas,
            stream_ready,
        })
    }

    /// The stream, created when missing: every host's subjects, kept as long as the longest
    /// ban a peer applies (`max_bantime`), de-duplicated over two minutes.
    async fn stream(&self) -> Result<stream::Stream, FleetError> {
        let config = stream::Config {
            name: self.stream.clone(),
            subjects: vec!["f2b.>".into()],
            max_age: self.max_age,
            duplicate_window: Duration::from_secs(120),
            storage: stream::StorageType::File,
            num_replicas: self.replicas,
            ..Default::default()
        };
        let s = (self.js.get_or_create_stream(config))
            .await
            .map_err(|e| unavailable(&format!("stream {}", self.stream), e))?;
        self.stream_ready.store(true, Ordering::SeqCst);
        Ok(s)
    }

    async fn publish_one(&self, d: &Decision) -> Result<(), FleetError> {
        if !self.stream_ready.load(Ordering::SeqCst) {
            self.stream().await?;
        }
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", d.id().as_str());
        let payload = serde_json::to_vec(d).map_err(|e| FleetError::Config(e.to_string()))?;
        let ack = (self
            .js
            .publish_with_headers(d.subject(), headers, payload.into()))
        .await
        .map_err(|e| unavailable("publish", e))?;
        ack.await.map_err(|e| {
            self.stream_ready.store(false, Ordering::SeqCst);
            unavailable("publish", e)
        })?;
        Ok(())
    }
}

impl Bus for NatsBus {
    fn publish<'a>(&'a self, d: &'a Decision) -> BoxFuture<'a, Result<(), FleetError>> {
        Box::pin(self.publish_one(d))
    }

    fn subscribe(&self, after: u64) -> BoxFuture<'_, Result<Box<dyn Feed>, FleetError>> {
        Box::pin(async move {
            let s = self.stream().await?;
            let deliver_policy = match after {
                0 => consumer::DeliverPolicy::All,
                n => consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: n + 1,
                },
            };
            let c = s
                .create_consumer(consumer::pull::OrderedConfig {
                    filter_subject: "f2b.>".into(),
                    deliver_policy,
                    ..Default::default()
                })
                .await
                .map_err(|e| unavailable("consumer", e))?;
            let messages = c.messages().await.map_err(|e| unavailable("consumer", e))?;
            Ok(Box::new(NatsFeed { messages }) as Box<dyn Feed>)
        })
    }

    fn wait_connected(&self, timeout: Duration) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            let up = || self.client.connection_state() == async_nats::connection::State::Connected;
            let deadline = tokio::time::Instant::now() + timeout;
            while !up() {
                if tokio::time::Instant::now() >= deadline {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            true
        })
    }
}

struct NatsFeed {
    messages: consumer::pull::Ordered,
}

fn incoming(m: &jetstream::Message) -> Option<Incoming> {
    let info = m.info().ok()?;
    Some(Incoming {
        seq: info.stream_sequence,
        published_us: u64::try_from(info.published.unix_timestamp_nanos() / 1000).unwrap_or(0),
        pending: info.pending,
        subject: m.subject.to_string(),
        payload: m.payload.to_vec(),
    })
}

impl Feed for NatsFeed {
    fn next(&mut self) -> BoxFuture<'_, Option<Result<Vec<Incoming>, FleetError>>> {
        Box::pin(async move {
            let first = match self.messages.next().await? {
                Ok(m) => m,
                Err(e) => return Some(Err(unavailable("consumer", e))),
            };
            let mut out: Vec<Incoming> = incoming(&first).into_iter().collect();
            // Whatever else is there already, without waiting.
            while out.len() < BATCH {
                match self.messages.next().now_or_never() {
                    Some(Some(Ok(m))) => out.extend(incoming(&m)),
                    _ => break,
                }
            }
            Some(Ok(out))
        })
    }
}
