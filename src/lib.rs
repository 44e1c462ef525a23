//! f2b library
pub mod firewall;
