//! A fleet's network: a bridge in a namespace of its own, where `nats-server`s (Debian's
//! package, with JetStream) run, and hosts — each a network namespace — joined to it by veth
//! pairs. Addresses: the bridge 10.88.0.1/24 (extra server addresses 10.88.0.2–9), host `i`
//! 10.88.0.(10+i). Everything is gone when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use super::netns::NetNs;
use super::wait::wait_for;

/// The fleet's network: the namespace of the servers and the bridge.
pub struct FleetNet {
    pub core: NetNs,
    hosts: usize,
}

impl FleetNet {
    pub const SERVER: &'static str = "10.88.0.1";

    pub fn new() -> FleetNet {
        let core = NetNs::new();
        core.sh(
            "ip link add br0 type bridge && ip addr add 10.88.0.1/24 dev br0 && \
             ip addr add 10.88.0.2/24 dev br0 && ip addr add 10.88.0.3/24 dev br0 && \
             ip link set br0 up",
        );
        FleetNet { core, hosts: 0 }
    }

    /// A new host namespace on the bridge; returns it and its address.
    pub fn host(&mut self) -> (NetNs, String) {
        self.hosts += 1;
        let i = self.hosts;
        let ns = NetNs::new();
        let addr = format!("10.88.0.{}", 10 + i);
        ns.sh(&format!(
            "ip link add eth0 type veth peer name vh{i} netns {} && \
             ip addr add {addr}/24 dev eth0 && ip link set eth0 up",
            self.core.tid()
        ));
        self.core.sh(&format!(
            "ip link set vh{i} master br0 && ip link set vh{i} up"
        ));
        wait_for(Duration::from_secs(5), "the host's link to come up", || {
            ns.sh("ip -o link show eth0").contains("state UP")
        });
        (ns, addr)
    }
}

/// Is `nats-server` installed? Otherwise prints why the test is skipped.
pub fn nats_or_skip(test: &str) -> bool {
    if super::have("nats-server") {
        return true;
    }
    eprintln!("SKIP {test}: nats-server is not installed (apt-get install nats-server)");
    false
}

/// A `nats-server` with JetStream in the core namespace of a [`FleetNet`].
pub struct NatsServer {
    child: Option<Child>,
    pub dir: TempDir,
    args: Vec<String>,
    pub addr: String,
    pub port: u16,
    config_dir: Option<TempDir>,
}

impl NatsServer {
    /// One server on `addr:4222`, JetStream stored in a directory of its own.
    pub fn start(net: &FleetNet, addr: &str) -> NatsServer {
        NatsServer::with_args(net, addr, 4222, &[])
    }

    /// A server with a configuration file (`-c`), written into its directory.
    pub fn with_config(net: &FleetNet, addr: &str, config: &str) -> NatsServer {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nats.conf");
        std::fs::write(&path, config).unwrap();
        let path = path.display().to_string();
        let mut s = NatsServer::with_args(net, addr, 4222, &["-c", &path]);
        s.config_dir = Some(dir);
        s
    }

    /// A server with more arguments (cluster routes …).
    pub fn with_args(net: &FleetNet, addr: &str, port: u16, extra: &[&str]) -> NatsServer {
        let dir = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = vec![
            "-js".into(),
            "-sd".into(),
            dir.path().join("js").display().to_string(),
            "-a".into(),
            addr.into(),
            "-p".into(),
            port.to_string(),
            "-l".into(),
            dir.path().join("nats.log").display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut s = NatsServer {
            child: None,
            dir,
            args,
            addr: addr.into(),
            port,
            config_dir: None,
        };
        s.run(net);
        s
    }

    fn run(&mut self, net: &FleetNet) {
        let log = self.log_path();
        let _ = std::fs::remove_file(&log);
        let child = net.core.spawn_cmd(
            Command::new("nats-server")
                .args(&self.args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        self.child = Some(child);
        wait_for(Duration::from_secs(10), "nats-server to be ready", || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("Server is ready")
        });
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!("nats://{}:{}", self.addr, self.port)
    }

    /// Kill it (SIGKILL: as a crash would).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same store.
    pub fn restart(&mut self, net: &FleetNet) {
        self.kill();
        self.run(net);
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
