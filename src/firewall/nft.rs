//! nftables backend (in progress)

use super::{FirewallError, FirewallHandle};

/// Start the nftables firewall worker (placeholder until the netlink backend lands).
pub fn spawn() -> Result<FirewallHandle, FirewallError> {
    Err(FirewallError::Other(
        "the nftables backend is not built yet; use --firewall none".into(),
    ))
}
