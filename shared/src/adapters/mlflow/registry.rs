//! The model registry: the registered model created once (an existing one is fine), versions
//! created from the logged model (`models:/<model_id>`) or from `<artifact_uri>/model`, the
//! `champion` alias set and read, versions listed page by page with their aliases.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{json, Value};

use crate::ports::{LoggedModel, ModelVersionInfo, RunInfo, TrackerError};

use super::client::{tracker_error, CallError, Retry};
use super::{logged_models, MlflowTracker};

/// Page size for `model-versions/search`.
const SEARCH_PAGE_SIZE: u32 = 200;

impl MlflowTracker {
    async fn ensure_registered_model(&self, name: &str) -> Result<(), TrackerError> {
        if self.registered.lock().await.contains(name) {
            return Ok(());
        }
        let call = "registered-models/create";
        match self
            .api(
                Method::POST,
                call,
                &[],
                Some(&json!({ "name": name })),
                Retry::Create,
            )
            .await
        {
            Ok(_) => {}
            Err(e) if e.code() == Some("RESOURCE_ALREADY_EXISTS") => {}
            Err(e) => return Err(e.into_tracker_error(call)),
        }
        self.registered.lock().await.insert(name.to_string());
        Ok(())
    }

    /// The registered model's aliases, version by version (empty when the model is unknown).
    async fn aliases(&self, model_name: &str) -> Result<HashMap<u32, Vec<String>>, TrackerError> {
        let call = "registered-models/get";
        let answer = match self
            .api(
                Method::GET,
                call,
                &[("name", model_name)],
                None,
                Retry::Idempotent,
            )
            .await
        {
            Ok(answer) => answer,
            Err(e) if e.code() == Some("RESOURCE_DOES_NOT_EXIST") => return Ok(HashMap::new()),
            Err(e) => return Err(e.into_tracker_error(call)),
        };
        let mut map: HashMap<u32, Vec<String>> = HashMap::new();
        if let Some(aliases) = answer["registered_model"]["aliases"].as_array() {
            for entry in aliases {
                let alias = entry["alias"].as_str().unwrap_or_default().to_string();
                let version =
                    parse_version(&entry["version"]).map_err(|m| tracker_error(call, m))?;
                map.entry(version).or_default().push(alias);
            }
        }
        Ok(map)
    }

    /// Registers the logged model as a new version (creating the registered model the first
    /// time).
    pub(super) async fn register_version(
        &self,
        model_name: &str,
        run: &RunInfo,
        model: &LoggedModel,
    ) -> Result<ModelVersionInfo, TrackerError> {
        self.ensure_registered_model(model_name).await?;
        let call = "model-versions/create";
        let body = logged_models::model_version_body(model_name, run, model);
        let answer = self
            .api(Method::POST, call, &[], Some(&body), Retry::Create)
            .await
            .map_err(|e| e.into_tracker_error(call))?;
        let info = model_version_info(&answer["model_version"], Vec::new())
            .map_err(|m| tracker_error(call, m))?;
        tracing::info!(
            model_name,
            version = info.version,
            "registered a model version"
        );
        Ok(info)
    }

    /// Points the alias at the version.
    pub(super) async fn move_alias(
        &self,
        model_name: &str,
        alias: &str,
        version: u32,
    ) -> Result<(), TrackerError> {
        let call = "registered-models/alias";
        // The version goes as a string: MLflow rejects a JSON number here.
        let body = json!({ "name": model_name, "alias": alias, "version": version.to_string() });
        self.api(Method::POST, call, &[], Some(&body), Retry::Idempotent)
            .await
            .map(|_| ())
            .map_err(|e| e.into_tracker_error(call))
    }

    /// The version the alias names, or `None` when the alias or the model is unknown.
    pub(super) async fn version_by_alias(
        &self,
        model_name: &str,
        alias: &str,
    ) -> Result<Option<ModelVersionInfo>, TrackerError> {
        let call = "registered-models/alias";
        match self
            .api(
                Method::GET,
                call,
                &[("name", model_name), ("alias", alias)],
                None,
                Retry::Idempotent,
            )
            .await
        {
            Ok(answer) => model_version_info(&answer["model_version"], Vec::new())
                .map(Some)
                .map_err(|m| tracker_error(call, m)),
            Err(e) if is_missing_alias(&e) => Ok(None),
            Err(e) => Err(e.into_tracker_error(call)),
        }
    }

    /// Every version of the registered model, with its aliases, by version number.
    pub(super) async fn versions(
        &self,
        model_name: &str,
    ) -> Result<Vec<ModelVersionInfo>, TrackerError> {
        let call = "model-versions/search";
        let filter = if model_name.contains('\'') {
            if model_name.contains('"') {
                return Err(tracker_error(
                    call,
                    format!("model name {model_name:?} has both kinds of quote"),
                ));
            }
            format!("name=\"{model_name}\"")
        } else {
            format!("name='{model_name}'")
        };
        // Search results carry no aliases: they come from the registered model.
        let mut aliases = self.aliases(model_name).await?;
        let page_size = SEARCH_PAGE_SIZE.to_string();
        let mut versions = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![
                ("filter", filter.as_str()),
                ("max_results", page_size.as_str()),
            ];
            if let Some(t) = token.as_deref() {
                query.push(("page_token", t));
            }
            let answer = self
                .api(Method::GET, call, &query, None, Retry::Idempotent)
                .await
                .map_err(|e| e.into_tracker_error(call))?;
            for entry in answer["model_versions"].as_array().into_iter().flatten() {
                let version =
                    parse_version(&entry["version"]).map_err(|m| tracker_error(call, m))?;
                let info = model_version_info(entry, aliases.remove(&version).unwrap_or_default())
                    .map_err(|m| tracker_error(call, m))?;
                versions.push(info);
            }
            match answer["next_page_token"].as_str() {
                Some(next) if !next.is_empty() => token = Some(next.to_string()),
                _ => break,
            }
        }
        versions.sort_by_key(|v| v.version);
        Ok(versions)
    }
}

/// MLflow sends versions as strings ("3"); accept numbers too.
fn parse_version(value: &Value) -> Result<u32, String> {
    match value {
        Value::String(text) => text
            .parse()
            .map_err(|_| format!("model version {text:?} is not a number")),
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("model version {n} is out of range")),
        other => Err(format!("model version missing or malformed: {other}")),
    }
}

fn model_version_info(value: &Value, aliases: Vec<String>) -> Result<ModelVersionInfo, String> {
    let mut aliases = if aliases.is_empty() {
        value["aliases"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        aliases
    };
    aliases.sort();
    Ok(ModelVersionInfo {
        version: parse_version(&value["version"])?,
        run_id: value["run_id"].as_str().unwrap_or_default().to_string(),
        source: value["source"].as_str().unwrap_or_default().to_string(),
        aliases,
    })
}

/// MLflow answers an unknown alias with INVALID_PARAMETER_VALUE ("... not found") and an
/// unknown model with RESOURCE_DOES_NOT_EXIST.
fn is_missing_alias(error: &CallError) -> bool {
    match error {
        CallError::Api { code, message, .. } => match code.as_deref() {
            Some("RESOURCE_DOES_NOT_EXIST") => true,
            Some("INVALID_PARAMETER_VALUE") => {
                let message = message.to_ascii_lowercase();
                message.contains("not found") || message.contains("does not exist")
            }
            _ => false,
        },
        CallError::Transport { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_strings_or_numbers() {
        assert_eq!(parse_version(&json!("12")), Ok(12));
        assert_eq!(parse_version(&json!(3)), Ok(3));
        assert!(parse_version(&json!("x")).is_err());
        assert!(parse_version(&Value::Null).is_err());
    }
}
