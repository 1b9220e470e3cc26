//! Cache and counter adapters of the core ports. In-process ones live in
//! [`memory`]; they serve a single instance. Several instances share state
//! through the [`redis`] adapters.

pub mod memory;
pub mod redis;
