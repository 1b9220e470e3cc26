//! Development keys: when `DATA_ENCRYPTION_KEYS`, `BLIND_INDEX_KEY` or
//! `AUDIT_CHAIN_KEY` are unset outside production, keys are made once in
//! `DATA_DIR/dev-keys.json` (mode 0600) and reused on every start, so
//! encrypted data stays readable and the audit chain verifiable. A file from
//! before the audit chain key gains one, once.

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
    #[serde(default)]
    audit_chain_key: Option<String>,
}

fn new_key() -> Result<String, String> {
    Ok(encode_key(&generate_key().map_err(|e| e.to_string())?))
}

/// Fills missing keys from the development key file. Returns the file's path
/// when it was used.
pub fn ensure(config: &mut Config) -> Result<Option<PathBuf>, String> {
    if config.is_production()
        || (config.data_keys.is_some()
            && config.blind_index_key.is_some()
            && config.audit_chain_key.is_some())
    {
        return Ok(None);
    }
    let path = config.data_dir.join(FILE_NAME);
    let file = if path.exists() {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut file = serde_json::from_str::<DevKeysFile>(&text)
            .map_err(|_| format!("{} is not a valid development key file", path.display()))?;
        if file.audit_chain_key.is_none() {
            file.audit_chain_key = Some(new_key()?);
            write_private(&path, &file)?;
        }
        file
    } else {
        let file = DevKeysFile {
            data_encryption_keys: format!("dev1:{}", new_key()?),
            blind_index_key: new_key()?,
            audit_chain_key: Some(new_key()?),
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
    if config.audit_chain_key.is_none()
        && let Some(key) = &file.audit_chain_key
    {
        config.audit_chain_key = Some(Arc::new(DataKey::new(
            "audit_chain",
            parse_base64_key(key)?,
        )));
    }
    Ok(Some(path))
}

/// Writes the file (new, or replacing the old one whole) through a
/// temporary sibling renamed over it: never half-written.
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
    let temp = path.with_extension("json.tmp");
    // Left over by a crash mid-write: nothing in it is in use.
    let _ = std::fs::remove_file(&temp);
    // Created with 0600 from the start: never readable by others, even briefly.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .map_err(|e| format!("cannot create {}: {e}", temp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&temp, path))
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
        assert_eq!(
            first.audit_chain_key.unwrap().bytes(),
            second.audit_chain_key.unwrap().bytes()
        );
    }

    #[test]
    fn a_file_from_before_the_audit_key_gains_one_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let old = r#"{"data_encryption_keys": "dev1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
                      "blind_index_key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}"#;
        std::fs::write(&path, old).unwrap();
        let load = || {
            let mut c =
                Config::from_vars([("DATA_DIR", dir.path().display().to_string())]).unwrap();
            ensure(&mut c).unwrap();
            c
        };
        let first = load();
        assert_eq!(
            first.blind_index_key.unwrap().bytes(),
            &core::array::from_fn(|i| i as u8)
        );
        let key = *first.audit_chain_key.unwrap().bytes();
        assert_eq!(load().audit_chain_key.unwrap().bytes(), &key);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
