//! A local folder as the artifact store: the local default for models and the champion pointer.

use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;

use crate::ports::{ArtifactError, ArtifactStore};

/// Artifacts as files below a root folder.
#[derive(Clone, Debug)]
pub struct LocalArtifactStore {
    root: PathBuf,
}

impl LocalArtifactStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalArtifactStore { root: root.into() }
    }

    fn path_of(&self, operation: &'static str, key: &str) -> Result<PathBuf, ArtifactError> {
        safe_join(&self.root, key).ok_or_else(|| {
            ArtifactError::new(operation, key, "keys must be relative paths without '..'")
        })
    }
}

/// Joins a relative key to a root, refusing anything that could leave the root.
pub(crate) fn safe_join(root: &Path, key: &str) -> Option<PathBuf> {
    let relative = Path::new(key);
    let clean = !key.is_empty()
        && relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    clean.then(|| root.join(relative))
}

#[async_trait]
impl ArtifactStore for LocalArtifactStore {
    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        _content_type: &str,
    ) -> Result<(), ArtifactError> {
        let path = self.path_of("put", key)?;
        let error =
            |e: std::io::Error| ArtifactError::new("put", key, e.to_string()).with_source(e);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(error)?;
        }
        // Write to a temporary name and rename, so a reader never sees half a file.
        let temporary = path.with_extension("partial");
        tokio::fs::write(&temporary, bytes).await.map_err(error)?;
        tokio::fs::rename(&temporary, &path).await.map_err(error)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ArtifactError> {
        let path = self.path_of("get", key)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ArtifactError::new("get", key, e.to_string()).with_source(e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), ArtifactError> {
        let path = self.path_of("delete", key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ArtifactError::new("delete", key, e.to_string()).with_source(e)),
        }
    }

    fn location(&self) -> String {
        self.root.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_then_get_and_missing_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalArtifactStore::new(dir.path());
        store
            .put("models/v1/model.json", b"{}".to_vec(), "application/json")
            .await
            .unwrap();
        assert_eq!(
            store.get("models/v1/model.json").await.unwrap().as_deref(),
            Some(&b"{}"[..])
        );
        assert_eq!(store.get("champion.json").await.unwrap(), None);
    }

    #[tokio::test]
    async fn keys_cannot_escape_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalArtifactStore::new(dir.path());
        for key in ["../x", "/etc/passwd", "", "a/../../b"] {
            assert!(store.put(key, vec![], "text/plain").await.is_err(), "{key}");
        }
    }
}
