//! f2b library
pub mod filter;
pub mod firewall;
pub mod location;
