//! A local folder as the artifact store: the local default for models and the champion pointer.

use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;

use tokio::io::AsyncReadExt;

use crate::ports::{ArtifactError, ArtifactStore, BoundedObject, HEAD_BYTES};

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

/// The object read so far as [`BoundedObject`]: whole, or over `max_bytes` (by its declared
/// `size` or by what was read) and cut to its head.
pub(crate) fn bounded(mut bytes: Vec<u8>, size: u64, max_bytes: usize) -> BoundedObject {
    if size > max_bytes as u64 || bytes.len() > max_bytes {
        let size = size.max(bytes.len() as u64);
        bytes.truncate(HEAD_BYTES);
        BoundedObject::TooLarge { size, head: bytes }
    } else {
        BoundedObject::Whole(bytes)
    }
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

    async fn get_at_most(
        &self,
        key: &str,
        max_bytes: usize,
    ) -> Result<Option<BoundedObject>, ArtifactError> {
        let path = self.path_of("get", key)?;
        let error =
            |e: std::io::Error| ArtifactError::new("get", key, e.to_string()).with_source(e);
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(error(e)),
        };
        let size = file.metadata().await.map_err(error)?.len();
        // One byte past the limit tells a file that grew since its size was read.
        let wanted = if size > max_bytes as u64 {
            HEAD_BYTES
        } else {
            max_bytes.saturating_add(1)
        };
        let mut bytes = Vec::new();
        file.take(wanted as u64)
            .read_to_end(&mut bytes)
            .await
            .map_err(error)?;
        Ok(Some(bounded(bytes, size, max_bytes)))
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), ArtifactError> {
        let source = self.path_of("copy", from)?;
        let target = self.path_of("copy", to)?;
        let error =
            |e: std::io::Error| ArtifactError::new("copy", from, e.to_string()).with_source(e);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(error)?;
        }
        let temporary = target.with_extension("partial");
        tokio::fs::copy(&source, &temporary).await.map_err(error)?;
        tokio::fs::rename(&temporary, &target).await.map_err(error)
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
    async fn a_bounded_read_stops_at_the_head_of_a_large_object_and_copies_stay_local() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalArtifactStore::new(dir.path());
        let large = vec![b'x'; HEAD_BYTES * 3];
        store
            .put("in/big.csv", large.clone(), "text/csv")
            .await
            .unwrap();
        store
            .put("in/small.csv", b"a,b\n".to_vec(), "text/csv")
            .await
            .unwrap();
        let limit = HEAD_BYTES * 2;
        assert_eq!(
            store.get_at_most("in/big.csv", limit).await.unwrap(),
            Some(BoundedObject::TooLarge {
                size: large.len() as u64,
                head: vec![b'x'; HEAD_BYTES]
            })
        );
        assert_eq!(
            store.get_at_most("in/big.csv", large.len()).await.unwrap(),
            Some(BoundedObject::Whole(large.clone()))
        );
        assert_eq!(
            store.get_at_most("in/small.csv", limit).await.unwrap(),
            Some(BoundedObject::Whole(b"a,b\n".to_vec()))
        );
        assert_eq!(store.get_at_most("in/none.csv", limit).await.unwrap(), None);
        store.copy("in/big.csv", "out/big.csv").await.unwrap();
        assert_eq!(store.get("out/big.csv").await.unwrap(), Some(large));
        assert!(store.copy("in/none.csv", "out/none.csv").await.is_err());
    }

    #[test]
    fn bounded_counts_what_was_read_when_the_size_was_understated() {
        assert_eq!(
            bounded(vec![1; 11], 5, 10),
            BoundedObject::TooLarge {
                size: 11,
                head: vec![1; 11]
            }
        );
        assert_eq!(
            bounded(vec![1; 10], 10, 10),
            BoundedObject::Whole(vec![1; 10])
        );
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
