//! Development data keys: when `DATA_ENCRYPTION_KEYS` / `BLIND_INDEX_KEY` are
//! unset outside production, keys are made once in `DATA_DIR/dev-keys.json`
//! (mode 0600) and reused on every start, so encrypted data stays readable.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::Arc;

use gatehouse_core::config::{
    Config, DataKey, DataKeys, encode_key, generate_key, parse_base64_key,
};
use serde::{Deserialize, Serialize};

const FILE_NAME: &str = "dev-keys.json";

#[derive(Serialize, Deserialize)]
struct DevKeysFile {
    data_encryption_keys: String,
    blind_index_key: String,
}

/// Fills missing keys from the development key file. Returns the file's path
/// when it was used.
pub fn ensure(config: &mut Config) -> Result<Option<PathBuf>, String> {
    if config.is_production() || (config.data_keys.is_some() && config.blind_index_key.is_some()) {
        return Ok(None);
    }
    let path = config.data_dir.join(FILE_NAME);
    let file = if path.exists() {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str::<DevKeysFile>(&text)
            .map_err(|_| format!("{} is not a valid development key file", path.display()))?
    } else {
        let file = DevKeysFile {
            data_encryption_keys: format!(
                "dev1:{}",
                encode_key(&generate_key().map_err(|e| e.to_string())?)
            ),
            blind_index_key: encode_key(&generate_key().map_err(|e| e.to_string())?),
        };
        write_private(&path, &file)?;
        file
    };
    if config.data_keys.is_none() {
        config.data_keys = Some(Arc::new(DataKeys::parse(&file.data_encryption_keys)?));
    }
    if config.blind_index_key.is_none() {
        config.blind_index_key = Some(Arc::new(DataKey::new(
            "blind",
            parse_base64_key(&file.blind_index_key)?,
        )));
    }
    Ok(Some(path))
}

fn write_private(path: &std::path::Path, file: &DevKeysFile) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        // DATA_DIR holds the keys and the database: the service's alone.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(file).map_err(|e| e.to_string())?;
    // Created with 0600 from the start: never readable by others, even briefly.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn keys_are_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let load = || {
            let mut c = Config::from_vars([("DATA_DIR", data_dir.display().to_string())]).unwrap();
            let path = ensure(&mut c).unwrap().unwrap();
            (c, path)
        };
        let (first, path) = load();
        let mode = |p: &std::path::Path| {
            format!(
                "{:o}",
                std::fs::metadata(p).unwrap().permissions().mode() & 0o777
            )
        };
        assert_eq!(mode(&path), "600");
        assert_eq!(mode(&data_dir), "700", "DATA_DIR is created private");
        let (second, _) = load();
        assert_eq!(
            first.data_keys.unwrap().primary().bytes(),
            second.data_keys.unwrap().primary().bytes()
        );
        assert_eq!(
            first.blind_index_key.unwrap().bytes(),
            second.blind_index_key.unwrap().bytes()
        );
    }
}
