//! The champion model, cached per container.
//!
//! The model is loaded on first use. After that, the small champion pointer is re-read at
//! most once per `recheck` interval and the model reloaded only when the pointer changed, so
//! a promotion reaches every container within that interval. Serving reads only the artifact
//! store, never the tracking server. If the store fails while a champion is cached, the
//! cached champion keeps serving (and the failure is logged).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::pipeline::{load_champion_from, read_champion_pointer, Champion, PipelineError};
use crate::ports::ArtifactStore;

/// How often an empty store (no model yet) is asked again: short, so the first training
/// is seen almost at once, but not on every request of a flood.
const EMPTY_RECHECK: Duration = Duration::from_secs(1);

#[derive(Clone, Default)]
struct Cached {
    champion: Option<Arc<Champion>>,
    checked_at: Option<Instant>,
}

/// The served model with its pointer, refreshed lazily.
pub struct ChampionCache {
    artifacts: Arc<dyn ArtifactStore>,
    recheck: Duration,
    current: RwLock<Cached>,
    // One refresh at a time: concurrent requests wait for it instead of all reading the store.
    refresh: tokio::sync::Mutex<()>,
}

impl ChampionCache {
    /// A cache over the artifact store that re-checks the pointer every `recheck`.
    pub fn new(artifacts: Arc<dyn ArtifactStore>, recheck: Duration) -> Self {
        ChampionCache {
            artifacts,
            recheck,
            current: RwLock::new(Cached::default()),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    fn snapshot(&self) -> Cached {
        self.current
            .read()
            .map(|cached| cached.clone())
            .unwrap_or_default()
    }

    fn store(&self, cached: Cached) {
        if let Ok(mut current) = self.current.write() {
            *current = cached;
        }
    }

    /// The cached state when it is recent enough to answer without the store.
    fn fresh(&self) -> Option<Result<Arc<Champion>, PipelineError>> {
        let cached = self.current.read().ok()?;
        let checked_at = cached.checked_at?;
        match &cached.champion {
            Some(champion) if checked_at.elapsed() < self.recheck => Some(Ok(champion.clone())),
            None if checked_at.elapsed() < EMPTY_RECHECK.min(self.recheck) => {
                Some(Err(PipelineError::NoChampion))
            }
            _ => None,
        }
    }

    /// The champion; [`PipelineError::NoChampion`] before the first training.
    pub async fn get(&self) -> Result<Arc<Champion>, PipelineError> {
        if let Some(answer) = self.fresh() {
            return answer;
        }
        let _refreshing = self.refresh.lock().await;
        if let Some(answer) = self.fresh() {
            return answer;
        }
        self.refresh_locked().await
    }

    /// The champion's version, or `None` when there is none or it cannot be read.
    pub async fn version(&self) -> Option<u32> {
        match self.get().await {
            Ok(champion) => Some(champion.pointer.version),
            Err(PipelineError::NoChampion) => None,
            Err(error) => {
                tracing::warn!(%error, "champion unavailable");
                None
            }
        }
    }

    /// Forgets when the pointer was last read, so the next request reads it again (after a
    /// training in this container).
    pub fn invalidate(&self) {
        if let Ok(mut current) = self.current.write() {
            current.checked_at = None;
        }
    }

    async fn refresh_locked(&self) -> Result<Arc<Champion>, PipelineError> {
        let previous = self.snapshot().champion;
        let checked = |champion: Option<Arc<Champion>>| Cached {
            champion,
            checked_at: Some(Instant::now()),
        };
        let pointer = match read_champion_pointer(self.artifacts.as_ref()).await {
            Ok(pointer) => pointer,
            Err(error) => {
                return match previous {
                    Some(champion) => {
                        tracing::warn!(%error, "cannot read the champion pointer; serving the cached champion");
                        self.store(checked(Some(champion.clone())));
                        Ok(champion)
                    }
                    None => Err(error),
                }
            }
        };
        match (pointer, previous) {
            (None, Some(champion)) => {
                tracing::warn!("the champion pointer disappeared; serving the cached champion");
                self.store(checked(Some(champion.clone())));
                Ok(champion)
            }
            (None, None) => {
                self.store(checked(None));
                Err(PipelineError::NoChampion)
            }
            (Some(pointer), Some(champion)) if pointer == champion.pointer => {
                self.store(checked(Some(champion.clone())));
                Ok(champion)
            }
            (Some(pointer), previous) => {
                let version = pointer.version;
                match load_champion_from(self.artifacts.as_ref(), pointer).await {
                    Ok(loaded) => {
                        tracing::info!(version, "loaded the champion model");
                        let loaded = Arc::new(loaded);
                        self.store(checked(Some(loaded.clone())));
                        Ok(loaded)
                    }
                    Err(error) => match previous {
                        Some(champion) => {
                            tracing::error!(%error, version, "cannot load the new champion; serving the cached one");
                            self.store(checked(Some(champion.clone())));
                            Ok(champion)
                        }
                        None => Err(error),
                    },
                }
            }
        }
    }
}
