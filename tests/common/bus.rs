//! A private, system-like D-Bus: `dbus-daemon` with the system bus's default-deny policy and
//! the project's `dbus/org.f2b.conf`, so that bus policy is tested as on a host.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use f2b::dbus::BusSpec;

use super::repo;

/// dbus-daemon with `<type>system</type>`, the default-deny policy of the system bus and an
/// `<includedir>` holding a copy of `dbus/org.f2b.conf`. Killed on drop.
pub struct PrivateBus {
    _dir: tempfile::TempDir,
    child: Child,
    /// The bus address (`unix:path=…`), for `--bus`, `busctl --address` and zbus.
    pub address: String,
}

impl PrivateBus {
    pub fn start() -> PrivateBus {
        Self::start_with(&[])
    }

    /// `extra`: more policy files to put beside `org.f2b.conf`.
    pub fn start_with(extra: &[&Path]) -> PrivateBus {
        let dir = tempfile::tempdir().unwrap();
        // Others (uid 65534) must reach the socket.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let policy_dir = dir.path().join("system.d");
        std::fs::create_dir(&policy_dir).unwrap();
        std::fs::copy(
            repo().join("dbus/org.f2b.conf"),
            policy_dir.join("org.f2b.conf"),
        )
        .unwrap();
        for f in extra {
            std::fs::copy(f, policy_dir.join(f.file_name().unwrap())).unwrap();
        }
        let socket = dir.path().join("bus");
        let config = dir.path().join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path={socket}</listen>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <includedir>{policy}</includedir>
</busconfig>
"#,
                socket = socket.display(),
                policy = policy_dir.display()
            ),
        )
        .unwrap();
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address=1", "--nopidfile"])
            .stdout(Stdio::piped())
            // It complains about its fd limit when not started by systemd.
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line.trim().to_string();
        assert!(address.starts_with("unix:"), "dbus-daemon said {address:?}");
        PrivateBus {
            _dir: dir,
            child,
            address,
        }
    }

    pub fn spec(&self) -> BusSpec {
        BusSpec::Address(self.address.clone())
    }

    /// `busctl --address=… ARGS` as root.
    pub fn busctl(&self, args: &[&str]) -> Output {
        busctl(&self.address, args)
    }

    /// [`PrivateBus::busctl`] that must succeed; its stdout.
    #[track_caller]
    pub fn busctl_ok(&self, args: &[&str]) -> String {
        let o = self.busctl(args);
        assert!(
            o.status.success(),
            "busctl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

/// `busctl --address=ADDRESS ARGS` as root.
pub fn busctl(address: &str, args: &[&str]) -> Output {
    Command::new("busctl")
        .arg(format!("--address={address}"))
        .args(args)
        .output()
        .expect("busctl")
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Does `org.f2b` have an owner on the bus at `address`?
pub fn name_has_owner(address: &str) -> bool {
    let o = busctl(
        address,
        &[
            "call",
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "NameHasOwner",
            "s",
            "org.f2b",
        ],
    );
    String::from_utf8_lossy(&o.stdout).trim() == "b true"
}
