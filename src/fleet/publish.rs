//! The outbox sink `fleet`: each ban and unban of a shared jail, once enforced here, is
//! published to the stream. While the bus is down the message waits (in the outbox, which
//! survives restarts); it goes out as soon as the connection is back.

use std::sync::Arc;
use std::time::Duration;

use super::{Bus, Decision, Event, FleetError, Status};
use crate::engine::FLEET_SINK;
use crate::outbox::{Delivery, DeliveryError, Notice, NoticeEvent, Sink};

/// How long one delivery waits for the connection before it is retried later.
const WAIT_CONNECTED: Duration = Duration::from_secs(30);

/// The fleet's outbox sink.
pub struct FleetSink {
    bus: Arc<dyn Bus>,
    status: Status,
}

impl FleetSink {
    pub fn new(bus: Arc<dyn Bus>, status: Status) -> FleetSink {
        FleetSink { bus, status }
    }
}

/// The decision a notice tells of; `None` for what the fleet does not share (jail start and
/// stop, and decisions that came from a peer: no echoes).
pub fn decision(n: &Notice) -> Option<Decision> {
    let event = match n.event {
        NoticeEvent::Ban => Event::Ban,
        NoticeEvent::Unban => Event::Unban,
        NoticeEvent::Start | NoticeEvent::Stop => return None,
    };
    if n.origin.starts_with("peer:") {
        return None;
    }
    Some(Decision {
        event,
        jail: n.jail.clone(),
        net: n.address.clone(),
        end_us: n.end_us,
        count: n.bancount,
        host: n.host.clone(),
        time_us: n.time_us,
    })
}

impl Sink for FleetSink {
    fn name(&self) -> &str {
        FLEET_SINK
    }

    fn deliver<'a>(&'a self, notice: &'a Notice) -> Delivery<'a> {
        Box::pin(async move {
            let Some(d) = decision(notice) else {
                return Ok(());
            };
            if !self.bus.wait_connected(WAIT_CONNECTED).await {
                return Err(DeliveryError::Transient("not connected to NATS".into()));
            }
            match self.bus.publish(&d).await {
                Ok(()) => {
                    self.status.published();
                    Ok(())
                }
                Err(FleetError::Unavailable(e)) => Err(DeliveryError::Transient(e)),
                Err(e @ FleetError::Config(_)) => Err(DeliveryError::Permanent(e.to_string())),
            }
        })
    }
}
