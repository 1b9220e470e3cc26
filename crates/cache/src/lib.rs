//! Cache and counter adapters of the core ports. In-process ones live in
//! [`memory`]; they serve a single instance (several instances need the
//! shared Redis adapters).

pub mod memory;
