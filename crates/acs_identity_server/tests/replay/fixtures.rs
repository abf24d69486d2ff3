//! The fixtures in `tests/recordings/`: recorded SDK sessions with ACS, trimmed to what the
//! replay needs, and the allow-list of known differences.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Map, Value};

/// The four official SDKs whose recordings are replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Sdk {
    Dotnet,
    Java,
    Python,
    Js,
}

impl Sdk {
    pub(crate) const ALL: [Sdk; 4] = [Sdk::Dotnet, Sdk::Java, Sdk::Python, Sdk::Js];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Sdk::Dotnet => "dotnet",
            Sdk::Java => "java",
            Sdk::Python => "python",
            Sdk::Js => "js",
        }
    }
}

/// One recording file reduced to its ACS traffic.
#[derive(Debug, Deserialize)]
pub(crate) struct Fixture {
    pub(crate) name: String,
    pub(crate) source: Source,
    /// `hmac` (the resource's access key) or `entra` (a bearer token).
    pub(crate) auth: String,
    /// `async` (Python's async client) or `browser` (the JS SDK in a browser).
    #[serde(default)]
    pub(crate) client: Option<String>,
    /// An identity of another resource the test used on purpose.
    #[serde(default)]
    pub(crate) foreign_id: Option<String>,
    pub(crate) entries: Vec<Entry>,
}

/// Where a fixture comes from.
#[derive(Debug, Deserialize)]
pub(crate) struct Source {
    pub(crate) path: String,
    pub(crate) commit: String,
}

/// One request and ACS's answer to it.
#[derive(Debug, Deserialize)]
pub(crate) struct Entry {
    pub(crate) operation: String,
    pub(crate) request: Request,
    pub(crate) response: Response,
}

/// The request as the SDK sent it; `${id}` and `${teams.*}` stand for live values.
#[derive(Debug, Deserialize)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: Map<String, Value>,
    pub(crate) body: Option<String>,
}

/// What ACS answered (headers trimmed to the ones compared).
#[derive(Debug, Deserialize)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Map<String, Value>,
    pub(crate) body: Value,
}

#[derive(Debug, Deserialize)]
struct File {
    sdk: String,
    repository: String,
    fixtures: Vec<Fixture>,
}

/// A fixture entry whose difference from ACS is known and explained.
#[derive(Debug, Deserialize)]
pub(crate) struct Allowed {
    /// `<sdk>/<fixture name>`.
    pub(crate) fixture: String,
    /// The entry index within the fixture.
    pub(crate) entry: usize,
    pub(crate) reason: String,
}

fn recordings_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/recordings")
}

/// Loads `tests/recordings/<sdk>.json`.
pub(crate) fn load(sdk: Sdk) -> Vec<Fixture> {
    let path = recordings_dir().join(format!("{}.json", sdk.name()));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let file: File = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    assert_eq!(file.sdk, sdk.name(), "{path:?}");
    let repo = match sdk {
        Sdk::Dotnet => "Azure/azure-sdk-for-net",
        Sdk::Java => "Azure/azure-sdk-for-java",
        Sdk::Python => "Azure/azure-sdk-for-python",
        Sdk::Js => "Azure/azure-sdk-for-js",
    };
    assert_eq!(file.repository, repo, "{path:?}");
    for f in &file.fixtures {
        assert!(
            f.source.commit.len() == 40 && f.source.commit.bytes().all(|b| b.is_ascii_hexdigit()),
            "{}: provenance needs a commit",
            f.name
        );
        assert!(!f.source.path.is_empty() && !f.entries.is_empty(), "{}", f.name);
    }
    file.fixtures
}

/// Loads `tests/recordings/allowed.json`.
pub(crate) fn allowed() -> Vec<Allowed> {
    let path = recordings_dir().join("allowed.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let list: Vec<Allowed> =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    for a in &list {
        assert!(a.reason.len() > 20, "{}#{}: the allow-list needs a reason", a.fixture, a.entry);
    }
    list
}
