//! Read-only questions answered from the engine's state.

use std::net::IpAddr;

use super::Engine;

impl Engine {
    /// Past bans of an address, in the jails that count it (each jail by its own aggregation
    /// unit): (jail, start µs), oldest first.
    pub(super) fn history_of(&self, addr: IpAddr) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for j in self.jails.values() {
            let key = j.key(addr);
            for p in self.history.of(&key) {
                if &*p.jail == j.name() {
                    out.push((p.jail.to_string(), p.t));
                }
            }
        }
        out.sort_by_key(|(_, t)| *t);
        out.dedup();
        out
    }
}
