//! f2b library
pub mod config;
pub mod engine;
pub mod filter;
pub mod firewall;
pub mod jail;
pub mod location;
pub mod source;
