//! The Python loader shipped in every model folder, so MLflow's Python client can load and serve
//! a model (`mlflow.pyfunc.load_model`, `mlflow models serve`) without this crate.
//!
//! The module is `shared/python/fraudrisk_pyfunc.py`, embedded here and written beside
//! `model.json` as [`PYFUNC_CODE_FILE`]; the `MLmodel`'s `python_function` flavor names it
//! ([`super::ModelArtifact::mlmodel_file`]). It scores as [`super::Model::log_odds`] does and
//! validates as [`crate::schema::Feature::check`] does; its copy of the feature table is
//! compared with [`crate::schema::FEATURES`] by a test here.

use super::artifact::MODEL_JSON_FILE;

/// The loader's source, as written into every model folder.
pub const PYFUNC_SOURCE: &str = include_str!("../../python/fraudrisk_pyfunc.py");

/// The module MLflow imports (`loader_module`).
pub const PYFUNC_MODULE: &str = "fraudrisk_pyfunc";

/// The folder, relative to the model folder, that MLflow puts on `sys.path` (`code`).
pub const PYFUNC_CODE_DIR: &str = "code";

/// Where the module goes in a model folder.
pub const PYFUNC_CODE_FILE: &str = "code/fraudrisk_pyfunc.py";

/// Content type of the module in artifact stores.
pub const PYFUNC_CONTENT_TYPE: &str = "text/x-python; charset=utf-8";

/// The `python_version` of the flavor: the Python the test command loads it with. MLflow only
/// warns when the loading interpreter's major.minor differs; the module itself needs numpy and
/// pandas and no language feature newer than Python 3.8.
pub const PYFUNC_PYTHON_VERSION: &str = "3.11";

/// One file of a model folder, relative to the folder.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelFile {
    /// Path inside the folder (`/`-separated).
    pub path: &'static str,
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
}

/// Everything a model folder holds, in the order to write it: `model.json`, the loader, and
/// the `MLmodel` last (it is what makes the folder a model to MLflow).
pub fn model_folder(model_json: Vec<u8>, mlmodel: String) -> [ModelFile; 3] {
    [
        ModelFile {
            path: MODEL_JSON_FILE,
            bytes: model_json,
            content_type: "application/json",
        },
        ModelFile {
            path: PYFUNC_CODE_FILE,
            bytes: PYFUNC_SOURCE.as_bytes().to_vec(),
            content_type: PYFUNC_CONTENT_TYPE,
        },
        ModelFile {
            path: "MLmodel",
            bytes: mlmodel.into_bytes(),
            content_type: "application/yaml",
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Domain, FEATURES};

    /// The feature table as the Python module must spell it, between its BEGIN/END markers.
    fn python_feature_table() -> String {
        let mut out = String::from("FEATURES = (\n");
        for feature in FEATURES.iter() {
            let domain = match feature.domain {
                Domain::Range { min, max } => format!("(\"range\", ({min}, {max}))"),
                Domain::Codes(codes) => {
                    let listed: Vec<String> = codes.iter().map(|(c, _)| c.to_string()).collect();
                    // A one-element Python tuple needs its trailing comma.
                    let comma = if listed.len() == 1 { "," } else { "" };
                    format!("(\"codes\", ({}{comma}))", listed.join(", "))
                }
            };
            out.push_str(&format!(
                "    (\"{}\", \"{}\", {domain}),\n",
                feature.name, feature.kind
            ));
        }
        out.push_str(")\n");
        out
    }

    #[test]
    fn the_python_feature_table_is_the_schema() {
        let begin = "# BEGIN FEATURES\n";
        let start = PYFUNC_SOURCE.find(begin).map(|i| i + begin.len());
        let end = PYFUNC_SOURCE.find("# END FEATURES\n");
        let (Some(start), Some(end)) = (start, end) else {
            panic!("the BEGIN/END FEATURES markers are missing from {PYFUNC_CODE_FILE}");
        };
        let expected = python_feature_table();
        assert_eq!(
            &PYFUNC_SOURCE[start..end],
            expected,
            "shared/python/fraudrisk_pyfunc.py's FEATURES differs from the schema; paste:\n{expected}"
        );
    }

    #[test]
    fn the_module_has_the_loader_mlflow_calls() {
        assert!(PYFUNC_SOURCE.contains("\ndef _load_pyfunc(data_path"));
        assert!(PYFUNC_SOURCE.contains(&format!(
            "FORMAT_VERSION = {}\n",
            super::super::FORMAT_VERSION
        )));
        assert!(PYFUNC_SOURCE.contains("OUTPUT_COLUMN = \"probability_of_fraud\"\n"));
        assert_eq!(
            PYFUNC_CODE_FILE,
            format!("{PYFUNC_CODE_DIR}/{PYFUNC_MODULE}.py")
        );
    }
}
