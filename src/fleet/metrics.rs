//! The fleet's Prometheus families (rendered by [`crate::metrics`] when `[fleet]` is set).

use std::fmt::Write;

use super::FleetSnapshot;

/// The fleet's families into `o`; `label` escapes a label value.
pub fn render(f: &FleetSnapshot, o: &mut String, label: fn(&str) -> String) {
    let family = |o: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(o, "# HELP {name} {help}");
        let _ = writeln!(o, "# TYPE {name} {kind}");
    };
    family(
        o,
        "f2b_fleet_connected",
        "gauge",
        "Connected to the fleet's NATS servers (1) or not (0).",
    );
    let _ = writeln!(o, "f2b_fleet_connected {}", u8::from(f.connected));
    family(
        o,
        "f2b_fleet_lag",
        "gauge",
        "Messages in the fleet's stream not applied here yet (stream's last sequence minus the applied one).",
    );
    let _ = writeln!(o, "f2b_fleet_lag {}", f.lag());
    family(
        o,
        "f2b_fleet_published_total",
        "counter",
        "Decisions of this host published to the fleet.",
    );
    let _ = writeln!(o, "f2b_fleet_published_total {}", f.published);
    family(
        o,
        "f2b_fleet_applied_total",
        "counter",
        "Decisions of each peer applied here.",
    );
    for (peer, p) in &f.peers {
        let _ = writeln!(
            o,
            "f2b_fleet_applied_total{{peer=\"{}\"}} {}",
            label(peer),
            p.applied
        );
    }
    family(
        o,
        "f2b_fleet_refused_total",
        "counter",
        "Peer decisions refused here, by reason (not_accepted, prefix, rate, ignored, own, unbannable, no_jail, expired, spoofed, malformed).",
    );
    for (why, n) in &f.refused {
        let _ = writeln!(
            o,
            "f2b_fleet_refused_total{{reason=\"{}\"}} {n}",
            label(why)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        let mut f = FleetSnapshot {
            connected: true,
            last_seq: 10,
            applied_seq: 7,
            published: 2,
            ..Default::default()
        };
        f.peers.entry("a".into()).or_default().applied = 5;
        f.refused.insert("rate".into(), 3);
        let mut o = String::new();
        render(&f, &mut o, |s| s.to_string());
        for line in [
            "f2b_fleet_connected 1",
            "f2b_fleet_lag 3",
            "f2b_fleet_published_total 2",
            "f2b_fleet_applied_total{peer=\"a\"} 5",
            "f2b_fleet_refused_total{reason=\"rate\"} 3",
        ] {
            assert!(o.lines().any(|l| l == line), "{line} missing in\n{o}");
        }
    }
}
