//! `GET /openapi/{api-version}.json`: the published OpenAPI (Swagger 2.0) document of each
//! api-version the service serves. Unauthenticated, like `/.well-known/jwks.json`: the
//! documents are public.
//!
//! The documents are the upstream files in `openapi/`, embedded at build time, served
//! self-contained: `$ref`s to the shared `common.json` become local definitions, and
//! `x-ms-examples` (references to example files that are not embedded) are left out.

use std::collections::HashMap;
use std::sync::OnceLock;

use acs_identity_core::ApiVersion;
use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().without_v07_checks().route("/openapi/{file}", get(document))
}

/// The upstream document of a version. The match is exhaustive: a new `ApiVersion` does not
/// compile until its document is embedded.
fn upstream(version: ApiVersion) -> &'static str {
    match version {
        ApiVersion::V2021_02_22Preview1 => {
            include_str!("../../openapi/2021-02-22-preview1/CommunicationIdentity.json")
        }
        ApiVersion::V2021_03_07 => {
            include_str!("../../openapi/2021-03-07/CommunicationIdentity.json")
        }
        ApiVersion::V2021_03_31Preview1 => {
            include_str!("../../openapi/2021-03-31-preview1/CommunicationIdentity.json")
        }
        ApiVersion::V2021_10_31Preview => {
            include_str!("../../openapi/2021-10-31-preview/CommunicationIdentity.json")
        }
        ApiVersion::V2022_06_01 => {
            include_str!("../../openapi/2022-06-01/CommunicationIdentity.json")
        }
        ApiVersion::V2022_10_01 => {
            include_str!("../../openapi/2022-10-01/CommunicationIdentity.json")
        }
        ApiVersion::V2023_10_01 => {
            include_str!("../../openapi/2023-10-01/CommunicationIdentity.json")
        }
        ApiVersion::V2025_03_02Preview => {
            include_str!("../../openapi/2025-03-02-preview/CommunicationIdentity.json")
        }
        ApiVersion::V2025_06_30 => {
            include_str!("../../openapi/2025-06-30/CommunicationIdentity.json")
        }
        ApiVersion::V2026_07_22 => {
            include_str!("../../openapi/2026-07-22/CommunicationIdentity.json")
        }
        ApiVersion::V2026_09_23 => {
            include_str!("../../openapi/2026-09-23/CommunicationIdentity.json")
        }
    }
}

/// The shared `common.json` of a Common version, as the documents reference it.
fn common(version: &str) -> Option<&'static str> {
    Some(match version {
        "2021-03-07" => include_str!("../../openapi/common/2021-03-07/common.json"),
        "2022-07-13" => include_str!("../../openapi/common/2022-07-13/common.json"),
        "2023-11-15" => include_str!("../../openapi/common/2023-11-15/common.json"),
        "2025-06-30" => include_str!("../../openapi/common/2025-06-30/common.json"),
        _ => return None,
    })
}

/// `../../../Common/stable/<version>/common.json#/definitions/<name>` → (version, name).
fn common_ref(reference: &str) -> Option<(&str, &str)> {
    let rest = reference.strip_prefix("../../../Common/stable/")?;
    let (version, rest) = rest.split_once('/')?;
    let name = rest.strip_prefix("common.json#/definitions/")?;
    Some((version, name))
}

/// Rewrites common references to local ones (collecting the Common versions used) and
/// drops `x-ms-examples`.
fn localize(value: &mut Value, commons: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            map.remove("x-ms-examples");
            if let Some(Value::String(reference)) = map.get_mut("$ref") {
                if let Some((version, name)) = common_ref(reference) {
                    if !commons.iter().any(|c| c == version) {
                        commons.push(version.to_owned());
                    }
                    *reference = format!("#/definitions/{name}");
                }
            }
            map.values_mut().for_each(|v| localize(v, commons));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| localize(v, commons)),
        _ => {}
    }
}

/// The self-contained document of `version`.
fn build(version: ApiVersion) -> Result<Bytes, String> {
    let mut doc: Value = serde_json::from_str(upstream(version)).map_err(|e| e.to_string())?;
    let mut commons = Vec::new();
    localize(&mut doc, &mut commons);
    for c in commons {
        let text = common(&c).ok_or_else(|| format!("common {c} is not embedded"))?;
        let shared: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let Some(Value::Object(shared)) = shared.get("definitions").cloned() else {
            return Err(format!("common {c} has no definitions"));
        };
        let Value::Object(root) = &mut doc else { return Err("not an object".to_owned()) };
        let definitions = root
            .entry("definitions")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .ok_or("definitions is not an object")?;
        for (name, definition) in shared {
            definitions.entry(name).or_insert(definition);
        }
    }
    serde_json::to_vec_pretty(&doc).map(Bytes::from).map_err(|e| e.to_string())
}

/// Every version's document, built once.
fn documents() -> &'static HashMap<ApiVersion, Result<Bytes, String>> {
    static DOCS: OnceLock<HashMap<ApiVersion, Result<Bytes, String>>> = OnceLock::new();
    DOCS.get_or_init(|| ApiVersion::ALL.into_iter().map(|v| (v, build(v))).collect())
}

/// The OpenAPI document of this service's own extensions (validation, the identity list,
/// the resource and activity), written by hand.
const EXTENSIONS: &str = include_str!("../../openapi/extensions.json");

async fn document(Path(file): Path<String>) -> Response {
    if file == "extensions.json" {
        let mut res = (StatusCode::OK, EXTENSIONS).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        return res;
    }
    let version = file.strip_suffix(".json").and_then(|v| v.parse::<ApiVersion>().ok());
    let Some(doc) = version.and_then(|v| documents().get(&v)) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            "No OpenAPI document for this api-version. Documents: /openapi/<api-version>.json \
             for each api-version the service serves; /openapi/extensions.json for this \
             service's extensions.",
        )
        .into_response();
    };
    match doc {
        Ok(bytes) => {
            let mut res = (StatusCode::OK, bytes.clone()).into_response();
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            res
        }
        Err(e) => ApiError::internal(&std::io::Error::other(e.clone())).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` in `value`.
    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r.clone());
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_served_version_has_a_self_contained_document() {
        for version in ApiVersion::ALL {
            let doc: Value = serde_json::from_slice(&build(version).unwrap()).unwrap();
            assert_eq!(doc["swagger"], "2.0", "{version}");
            let mut all = Vec::new();
            refs(&doc, &mut all);
            assert!(!all.is_empty(), "{version}");
            for r in all {
                let pointer =
                    r.strip_prefix('#').unwrap_or_else(|| panic!("{version}: external {r}"));
                assert!(doc.pointer(pointer).is_some(), "{version}: {r} does not resolve");
            }
            assert!(!serde_json::to_string(&doc).unwrap().contains("x-ms-examples"));
        }
    }

    #[test]
    fn upstream_files_are_unchanged_json_of_their_version() {
        for version in ApiVersion::ALL {
            let doc: Value = serde_json::from_str(upstream(version)).unwrap();
            // Each embedded file is the one of its version.
            assert_eq!(doc["info"]["version"], version.as_str(), "{version}");
        }
    }
}
