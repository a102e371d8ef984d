//! The artifact store port: where models, the champion pointer and dropped files live (a local
//! folder or S3), and its error. Re-exported by [`crate::ports`].

use async_trait::async_trait;

use crate::BoxError;

/// A failure of the artifact store.
#[derive(Debug, thiserror::Error)]
#[error("artifact store error during {operation} of {key}: {message}")]
pub struct ArtifactError {
    pub operation: &'static str,
    pub key: String,
    /// What failed, readable on its own (it may quote `source`).
    pub message: String,
    /// The storage client's error, when there is one.
    #[source]
    pub source: Option<BoxError>,
}

impl ArtifactError {
    /// A failure described in words.
    pub fn new(
        operation: &'static str,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ArtifactError {
            operation,
            key: key.into(),
            message: message.into(),
            source: None,
        }
    }

    /// The same failure with the error underneath it.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }
}

/// How much of a too-large object [`ArtifactStore::get_at_most`] reads: enough to tell a
/// file's kind from its first line.
pub const HEAD_BYTES: usize = 64 * 1024;

/// What [`ArtifactStore::get_at_most`] read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BoundedObject {
    /// The whole object, within the limit.
    Whole(Vec<u8>),
    /// Over the limit: its size and at most its first [`HEAD_BYTES`].
    TooLarge { size: u64, head: Vec<u8> },
}

/// Where models and the champion pointer live; serving reads only this.
#[async_trait]
pub trait ArtifactStore: Send + Sync {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str)
        -> Result<(), ArtifactError>;
    /// The object, or `None` when there is none.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ArtifactError>;
    /// The object if it holds at most `max_bytes`; a larger one is not read past its first
    /// [`HEAD_BYTES`] (what an untrusted upload may cost). `None` when there is none.
    async fn get_at_most(
        &self,
        key: &str,
        max_bytes: usize,
    ) -> Result<Option<BoundedObject>, ArtifactError>;
    /// Copies an object within the store without passing it through this process.
    async fn copy(&self, from: &str, to: &str) -> Result<(), ArtifactError>;
    /// Removes the object; removing a missing one is not an error.
    async fn delete(&self, key: &str) -> Result<(), ArtifactError>;
    /// Where this store writes, for messages (a folder or an `s3://` URI).
    fn location(&self) -> String;
}
