//! The raw settings, layered: the process environment first, then the credentials file.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::ConfigError;

/// Names the credentials file explicitly (then it must exist).
pub const CREDENTIALS_FILE_VAR: &str = "FRAUDRISK_CREDENTIALS_FILE";
/// Read from the working directory when present and [`CREDENTIALS_FILE_VAR`] is unset.
pub const DEFAULT_CREDENTIALS_FILE: &str = "credentials.env";

/// A secret value that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Redacted(String);

impl Redacted {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Redacted(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The raw settings: environment values win over the file's.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    env: HashMap<String, String>,
    file: HashMap<String, String>,
    file_path: Option<PathBuf>,
}

impl Settings {
    /// The process environment plus the credentials file: the one named by
    /// `FRAUDRISK_CREDENTIALS_FILE` (which must exist), else `./credentials.env` if present.
    pub fn from_process() -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = super::process::vars().collect();
        let named = env
            .get(CREDENTIALS_FILE_VAR)
            .filter(|v| !v.trim().is_empty())
            .map(PathBuf::from);
        let file_path = match named {
            Some(path) => Some(path),
            None => {
                let default = PathBuf::from(DEFAULT_CREDENTIALS_FILE);
                default.is_file().then_some(default)
            }
        };
        let file = match &file_path {
            Some(path) => read_dotenv(path)?,
            None => HashMap::new(),
        };
        Ok(Settings {
            env,
            file,
            file_path,
        })
    }

    /// Settings from one dotenv file alone, without the process environment (`export`
    /// prefixes are accepted, so the env file of `scripts/services.sh` reads too).
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        Ok(Settings {
            env: HashMap::new(),
            file: read_dotenv(path)?,
            file_path: Some(path.to_path_buf()),
        })
    }

    /// Settings from explicit pairs only (no environment, no file): for tests and tools.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Settings {
            env: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            file: HashMap::new(),
            file_path: None,
        }
    }

    /// A non-empty value, environment first, then the file.
    pub fn get(&self, key: &str) -> Option<String> {
        [&self.env, &self.file]
            .into_iter()
            .filter_map(|map| map.get(key))
            .map(|v| v.trim())
            .find(|v| !v.is_empty())
            .map(str::to_string)
    }

    /// Sets or replaces a value (as if it came from the environment).
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.env.insert(key.into(), value.into());
    }

    /// Removes a value from both layers.
    pub fn unset(&mut self, key: &str) {
        self.env.remove(key);
        self.file.remove(key);
    }

    /// The credentials file that was read, if any.
    pub fn file_path(&self) -> Option<&Path> {
        self.file_path.as_deref()
    }

    pub(super) fn parse<T: std::str::FromStr>(
        &self,
        key: &'static str,
    ) -> Result<Option<T>, ConfigError>
    where
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        self.get(key)
            .map(|v| {
                v.parse::<T>().map_err(|e| ConfigError::Invalid {
                    variable: key,
                    message: format!("{v:?}: {e}"),
                    source: Some(Box::new(e)),
                })
            })
            .transpose()
    }

    pub(super) fn flag(&self, key: &'static str) -> Result<Option<bool>, ConfigError> {
        self.get(key)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::invalid(
                    key,
                    format!("{v:?} is not true or false"),
                )),
            })
            .transpose()
    }
}

pub(super) fn read_dotenv(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let error = |source: dotenvy::Error| ConfigError::File {
        path: path.to_path_buf(),
        source,
    };
    let mut map = HashMap::new();
    for item in dotenvy::from_path_iter(path).map_err(error)? {
        let (key, value) = item.map_err(error)?;
        map.insert(key, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn the_file_is_read_but_the_environment_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.env");
        std::fs::write(
            &path,
            "# comment\nFRAUDRISK_BUCKET=from-file\nFRAUDRISK_ARTIFACT_PREFIX=\"p/q\"\n",
        )
        .unwrap();
        let mut settings = Settings {
            file: read_dotenv(&path).unwrap(),
            file_path: Some(path),
            ..Settings::default()
        };
        assert_eq!(
            settings.get("FRAUDRISK_BUCKET").as_deref(),
            Some("from-file")
        );
        settings.set("FRAUDRISK_BUCKET", "from-env");
        let artifacts = Config::from_settings(&settings).unwrap().artifacts.unwrap();
        assert_eq!(artifacts.bucket, "from-env");
        assert_eq!(artifacts.prefix, "p/q");
        let missing = read_dotenv(&dir.path().join("missing.env")).unwrap_err();
        // The reader's error stays the source, for callers that walk the chain.
        assert!(std::error::Error::source(&missing).is_some(), "{missing}");
    }
}
