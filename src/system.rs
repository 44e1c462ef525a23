//! Facts about the host that other modules take as plain values: the services table
//! (`/etc/services`), the host's own addresses (for `ignoreself`), user names of uids and the
//! process's own uid. The configuration stays pure: the binaries read these here and hand
//! them over (see [`crate::config::LoadOptions::services`]).

use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::Services;

/// The services database.
pub const SERVICES_FILE: &str = "/etc/services";

/// The well-known service names plus those of `/etc/services` (TCP). A missing or unreadable
/// file leaves the well-known names: ports then need numbers or those names.
pub fn services() -> Services {
    match std::fs::read_to_string(SERVICES_FILE) {
        Ok(text) => Services::parse(&text),
        Err(e) => {
            tracing::debug!(file = SERVICES_FILE, error = %e, "no services database");
            Services::default()
        }
    }
}

/// Where the distribution says what it is (os-release(5)).
pub const OS_RELEASE: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];

/// The distribution ids of this host, most specific first: os-release's `ID`, then the ids
/// of `ID_LIKE` (Ubuntu: `ubuntu`, `debian`; AlmaLinux: `almalinux`, `rhel`, `centos`,
/// `fedora`). Filters choose their default log files by them. Empty when neither file is
/// readable.
pub fn os_ids() -> Vec<String> {
    for f in OS_RELEASE {
        match std::fs::read_to_string(f) {
            Ok(text) => return parse_os_release(&text),
            Err(e) => tracing::debug!(file = f, error = %e, "no os-release"),
        }
    }
    Vec::new()
}

/// `ID` then the words of `ID_LIKE`, from os-release text.
pub fn parse_os_release(text: &str) -> Vec<String> {
    let value = |key: &str| {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
            .next_back()
            .map(|v| v.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
    };
    let mut ids: Vec<String> = value("ID").into_iter().collect();
    for like in value("ID_LIKE").unwrap_or_default().split_whitespace() {
        if !ids.iter().any(|i| i == like) {
            ids.push(like.to_string());
        }
    }
    ids.retain(|i| !i.is_empty());
    ids
}

/// The addresses of this host's interfaces, as single-address networks (for `ignoreself`).
/// Empty when the kernel does not tell (logged).
pub fn local_addresses() -> Vec<IpNet> {
    let list = match nix::ifaddrs::getifaddrs() {
        Ok(list) => list,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the host's addresses (getifaddrs)");
            return Vec::new();
        }
    };
    list.filter_map(|ifa| {
        let a = ifa.address?;
        let ip = match (a.as_sockaddr_in(), a.as_sockaddr_in6()) {
            (Some(v4), _) => IpAddr::V4(v4.ip()),
            (None, Some(v6)) => IpAddr::V6(v6.ip()),
            _ => return None,
        };
        Some(IpNet::from(ip))
    })
    .collect()
}

/// The user name of `uid`, when the system's user database (NSS) knows it.
pub fn user_name(uid: u32) -> Option<String> {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(user) => user.map(|u| u.name),
        Err(e) => {
            tracing::debug!(uid, error = %e, "cannot look up the user name");
            None
        }
    }
}

/// The effective uid of this process.
pub fn effective_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// This host's name (for messages about bans and the fleet); "localhost" when unknown.
pub fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_addresses_include_loopback() {
        let l = local_addresses();
        assert!(l.iter().any(|n| n.addr().is_loopback()), "{l:?}");
    }

    #[test]
    fn root_is_named() {
        assert_eq!(user_name(0).as_deref(), Some("root"));
    }

    #[test]
    fn os_release_ids_most_specific_first() {
        let alma = "NAME=\"AlmaLinux\"\nID=\"almalinux\"\nID_LIKE=\"rhel centos fedora\"\n";
        assert_eq!(
            parse_os_release(alma),
            ["almalinux", "rhel", "centos", "fedora"]
        );
        assert_eq!(parse_os_release("ID=debian\n"), ["debian"]);
        assert_eq!(parse_os_release("ID='arch'\nID_LIKE=\n"), ["arch"]);
        assert!(parse_os_release("").is_empty());
    }

    #[test]
    fn services_file_is_read() {
        // Debian's netbase ships /etc/services; without it, the well-known names remain.
        assert_eq!(services().port("ssh"), Some(22));
    }
}
