//! Collects settings: the process environment, plus `.env` in development
//! (process variables win, so a deployment can always override the file).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::settings::{known_vars, unknown_vars};

#[derive(Debug)]
pub struct Vars {
    pub values: BTreeMap<String, String>,
    /// Names that look like ours but are not recognised.
    pub unknown: Vec<String>,
    pub env_file_used: Option<PathBuf>,
}

pub fn collect(env_file: Option<&Path>) -> Vars {
    let mut values: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let is_production = values
        .get("ENVIRONMENT")
        .is_some_and(|e| e.trim().eq_ignore_ascii_case("production"));
    let mut env_file_used = None;
    let mut unknown_in_file = Vec::new();
    if !is_production {
        let path = env_file.map_or_else(|| PathBuf::from(".env"), Path::to_path_buf);
        if let Ok(iter) = dotenvy::from_path_iter(&path) {
            env_file_used = Some(path);
            for (key, value) in iter.flatten() {
                unknown_in_file.push(key.clone());
                values.entry(key).or_insert(value);
            }
        }
    }
    let mut unknown = unknown_vars(values.keys().map(String::as_str));
    let known = known_vars();
    // Every key of the env file is meant for us, whatever its prefix.
    for key in unknown_in_file {
        if !known.contains(&key.as_str()) && !unknown.contains(&key) {
            unknown.push(key);
        }
    }
    Vars {
        values,
        unknown,
        env_file_used,
    }
}
