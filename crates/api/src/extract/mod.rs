//! Our extractors: their rejections are our problem responses.

mod json;

pub use json::ApiJson;
