//! f2b library
pub mod config;
pub mod filter;
pub mod firewall;
pub mod location;
