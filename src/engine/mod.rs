//! The engine: the one owner of jail and ban state.
pub mod api;
pub use api::{
    BanInfo, Command, CommandError, EngineHandle, Event, JailInfo, ReloadSummary, Tunable,
};
