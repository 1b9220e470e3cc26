//! Handlers, one module per resource; each function is a verb.

pub mod health;
