#!/usr/bin/env bash
# Install the Debian/Ubuntu packages f2b needs to build and run (`f2b demo-journal` uses
# systemd-journal-remote); with --tests also everything the whole test suite uses (real
# services, private buses, a Debian root for the system test, cargo-deb).
# Idempotent: installs only what is missing. Run as root (or through sudo).
set -euo pipefail
tests=""
[ "${1:-}" = "--tests" ] && tests=1
PKGS=(
  pkg-config libsystemd-dev libnftnl-dev libmnl-dev libsqlite3-dev   # build
  systemd-journal-remote                                             # real journal files (demo, tests)
)
[ -n "$tests" ] && PKGS+=(
  nftables iproute2                                                  # firewall and packet tests (netns)
  dbus dbus-daemon policykit-1                                       # private buses for D-Bus tests
  openssh-server openssh-client sshpass                              # real sshd in the filter tests
  util-linux procps                                                  # setpriv, unshare, nsenter, pkill
  dovecot-imapd vsftpd nginx apache2 apache2-utils dropbear-bin      # real services in filter tests
  logrotate                                                          # real rotations of followed log files (tests/files.rs)
  mmdebstrap systemd-container                                       # system test: Debian 12 booted under systemd-nspawn
  man-db binutils                                                    # man pages rendered in tests; objcopy for cargo-deb's dbgsym
  fail2ban python3-systemd                                           # f2b import-fail2ban: Debian's /etc/fail2ban, fail2ban-server and its database
  cockpit-ws cockpit-bridge chromium nodejs                          # the Cockpit page in a headless browser (tests/cockpit.rs)
  nats-server                                                        # the fleet over NATS JetStream (tests/fleet.rs)
  python3-aiosmtpd                                                   # a real SMTP server for the mail action (tests/actions.rs)
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # Services installed for the tests must not start now (tests start their own copies in
  # namespaces): forbid service starts during the install, as container images do.
  created_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    created_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  [ -z "$created_policy" ] || $SUDO rm -f /usr/sbin/policy-rc.d
fi
# cargo-deb builds the Debian package (the system test installs it in a booted container).
if [ -n "$tests" ] && ! cargo deb --version >/dev/null 2>&1; then
  cargo install --locked cargo-deb --version 3.8.0
fi
