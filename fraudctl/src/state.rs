//! Opening the state a command works on: shared by the one-shot commands and the demo, so
//! neither imports the other.

use std::path::Path;

use anyhow::{Context, Result};
use fraudrisk::services::Services;

/// The services the environment configures, over the local state folder for the rest.
pub async fn open(state: &Path) -> Result<Services> {
    Services::from_env(state)
        .await
        .with_context(|| format!("cannot open the local state in {}", state.display()))
}
