//! Packets across a [`Pair`](super::Pair): TCP listeners in the server namespace, connects from
//! a chosen attacker address that tell whether the server's firewall let them through.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::time::Duration;

use super::netns::NetNs;

/// How long a connect may take before we call it blocked (the SYN was dropped).
pub const BLOCKED_AFTER: Duration = Duration::from_millis(500);

/// What became of a connect.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Connected,
    /// No answer within the limit: the SYN (or datagram) was dropped.
    TimedOut,
    /// A reset or an ICMP error came back.
    Refused,
}

/// TCP connect from `src` (an address of `atk`) to `dst:port`, given up after [`BLOCKED_AFTER`].
pub fn connect(atk: &NetNs, src: &str, dst: &str, port: u16) -> Outcome {
    connect_within(atk, src, dst, port, BLOCKED_AFTER)
}

/// Like [`connect`], given up after `limit`.
pub fn connect_within(atk: &NetNs, src: &str, dst: &str, port: u16, limit: Duration) -> Outcome {
    let src: IpAddr = src.parse().unwrap();
    let dst: IpAddr = dst.parse().unwrap();
    atk.run(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let sock = if src.is_ipv4() {
                tokio::net::TcpSocket::new_v4()
            } else {
                tokio::net::TcpSocket::new_v6()
            }
            .unwrap();
            sock.bind(SocketAddr::new(src, 0)).unwrap();
            match tokio::time::timeout(limit, sock.connect(SocketAddr::new(dst, port))).await {
                Ok(Ok(_stream)) => Outcome::Connected,
                Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => Outcome::Refused,
                Ok(Err(e)) => panic!("connect {src} -> {dst}:{port}: {e}"),
                Err(_) => Outcome::TimedOut,
            }
        })
    })
}

/// A dual-stack listener on `port` in `ns` (connections complete in the backlog).
pub fn listen(ns: &NetNs, port: u16) -> TcpListener {
    ns.run(move || TcpListener::bind(("::", port)).unwrap())
}
