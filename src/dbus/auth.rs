//! Authorization of mutating calls.
//!
//! The bus policy (`dbus/org.f2b.conf`) lets everyone *send* to `org.f2b`; the daemon decides:
//! the caller is the message's sender (a unique bus name). Its uid comes from the bus
//! (`GetConnectionUnixUser`); root — or the daemon's own uid, which already controls the
//! daemon — is allowed. Anyone else is checked by polkit for the action `org.f2b.manage` with
//! the subject `("system-bus-name", {"name": <sender>})`: the caller, never the daemon itself.
//! When polkit is not on the bus, or fails, the call is refused.

use std::collections::HashMap;

use zbus::message::Header;
use zbus::Connection;

use super::error::{error_name, Error, Result};
use super::proxy::AuthorityProxy;

/// The polkit action of every mutating method.
pub const ACTION_MANAGE: &str = "org.f2b.manage";

/// polkit's `CheckAuthorizationFlags::AllowUserInteraction`.
const ALLOW_USER_INTERACTION: u32 = 1;

/// Decides whether the sender of a call may change state.
///
/// It holds no connection: the proxies are made per check from the connection the call came
/// in on (cheap, no bus traffic), because a proxy kept in an interface served by that same
/// connection would keep it alive forever.
#[derive(Clone)]
pub(crate) struct Authorizer {
    own_uid: u32,
}

impl Authorizer {
    pub(crate) fn new() -> Self {
        Authorizer {
            own_uid: crate::system::effective_uid(),
        }
    }

    /// The sender's uid if the sender of `hdr` may perform `action`, else `NotAuthorized`.
    pub(crate) async fn check(
        &self,
        conn: &Connection,
        hdr: Option<&Header<'_>>,
        action: &str,
    ) -> Result<u32> {
        let sender = hdr
            .and_then(|h| h.sender())
            .ok_or_else(|| Error::NotAuthorized("the call has no sender".into()))?;
        let proxy_err =
            |e: zbus::Error| Error::NotAuthorized(format!("cannot check the caller: {e}"));
        let dbus = zbus::fdo::DBusProxy::builder(conn)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .map_err(proxy_err)?;
        let uid = dbus
            .get_connection_unix_user(sender.clone().into())
            .await
            .map_err(|e| {
                Error::NotAuthorized(format!("cannot tell the uid of caller {sender}: {e}"))
            })?;
        if uid == 0 || uid == self.own_uid {
            return Ok(uid);
        }
        let mut details = HashMap::new();
        details.insert("name", zbus::Variant::from(sender.as_str()));
        let subject = ("system-bus-name", details);
        let denied = |why: String| {
            tracing::info!(caller = %sender, uid, action, "refused: {why}");
            Error::NotAuthorized(format!("uid {uid} is not authorized for {action}: {why}"))
        };
        let polkit = AuthorityProxy::builder(conn)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .map_err(proxy_err)?;
        match polkit
            .check_authorization(
                &subject,
                action,
                &HashMap::new(),
                ALLOW_USER_INTERACTION,
                "",
            )
            .await
        {
            Ok((true, _, _)) => Ok(uid),
            Ok((false, true, _)) => Err(denied(
                "authentication is required and no polkit agent provided it".into(),
            )),
            Ok((false, false, _)) => Err(denied("polkit said no".into())),
            Err(e) => match error_name(&e) {
                Some((name, _))
                    if name == "org.freedesktop.DBus.Error.ServiceUnknown"
                        || name == "org.freedesktop.DBus.Error.NameHasNoOwner" =>
                {
                    Err(denied("polkit is not available on this bus".into()))
                }
                _ => Err(denied(format!("polkit check failed: {e}"))),
            },
        }
    }
}
