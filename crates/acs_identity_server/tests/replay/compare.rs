//! Compares the service's answer with ACS's recorded one: status, error code, message and
//! target exactly; success bodies by shape; the correlation headers ACS sends.

use acs_identity_core::clock::{Clock as _, SystemClock};
use serde_json::{Map, Value};

/// What the service answered.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) text: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The differences between `answer` and ACS's recorded `status`/`headers`/`body`, for a
/// request that carried `api_version` and `client_request_id` and asked for a token
/// lifetime of `expires_in_minutes`.
pub(crate) fn differences(
    status: u16,
    headers: &Map<String, Value>,
    body: &Value,
    answer: &Answer,
    api_version: Option<&str>,
    client_request_id: Option<&str>,
    expires_in_minutes: Option<i64>,
) -> Vec<String> {
    let mut diffs = Vec::new();
    if answer.status != status {
        diffs.push(format!("status {} (ACS {status})", answer.status));
    }
    compare_headers(headers, status, answer, api_version, client_request_id, &mut diffs);
    match body {
        Value::Null => {
            if !answer.text.is_empty() {
                diffs.push(format!("body {:?} (ACS: none)", clip(&answer.text)));
            }
        }
        Value::Object(_) if body.get("error").is_some() => {
            let ours: Value = serde_json::from_str(&answer.text).unwrap_or(Value::Null);
            if &ours != body {
                diffs.push(format!("error {} (ACS {body})", clip(&answer.text)));
            }
        }
        _ => match serde_json::from_str::<Value>(&answer.text) {
            Ok(ours) => {
                shape("$", "", body, &ours, &mut diffs);
                if let (Some(n), Some(on)) = (expires_in_minutes, expires_on(&ours)) {
                    check_lifetime(n, on, &mut diffs);
                }
            }
            Err(_) => diffs.push(format!("body {:?} is not JSON (ACS {body})", clip(&answer.text))),
        },
    }
    diffs
}

fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}

fn recorded<'a>(headers: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| v.as_str())
}

fn compare_headers(
    headers: &Map<String, Value>,
    status: u16,
    answer: &Answer,
    api_version: Option<&str>,
    client_request_id: Option<&str>,
    diffs: &mut Vec<String>,
) {
    match (recorded(headers, "content-type"), answer.header("content-type")) {
        (Some(want), Some(got)) if want.eq_ignore_ascii_case(got) => {}
        (Some(want), got) => diffs.push(format!("Content-Type {got:?} (ACS {want:?})")),
        (None, Some(got)) if status == 204 => {
            diffs.push(format!("Content-Type {got:?} on a 204 (ACS none)"))
        }
        (None, _) => {}
    }
    if recorded(headers, "ms-cv").is_some() {
        match answer.header("ms-cv") {
            Some(cv) if is_correlation_vector(cv) => {}
            got => diffs.push(format!("MS-CV {got:?} (ACS: 22 base64 characters, then .0)")),
        }
    }
    if let (Some(_), Some(sent)) = (recorded(headers, "x-ms-client-request-id"), client_request_id)
    {
        if answer.header("x-ms-client-request-id") != Some(sent) {
            diffs.push(format!(
                "x-ms-client-request-id {:?} (ACS echoes {sent:?})",
                answer.header("x-ms-client-request-id")
            ));
        }
    }
    // ACS sends the header from the operation itself; errors its model binding or token check
    // produce before the operation runs come without it. Only its presence is compared.
    if recorded(headers, "api-supported-versions").is_some() {
        let listed = answer
            .header("api-supported-versions")
            .map(|v| v.split(',').map(str::trim).any(|v| Some(v) == api_version));
        if listed != Some(true) {
            diffs.push(format!(
                "api-supported-versions {:?} does not list {api_version:?}",
                answer.header("api-supported-versions")
            ));
        }
    }
}

/// `MS-CV` as ACS writes it: 22 characters of standard base64, then `.0` (or `.2.0`).
fn is_correlation_vector(cv: &str) -> bool {
    let Some((base, rest)) = cv.split_once('.') else { return false };
    base.len() == 22
        && base.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        && rest.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// ACS's date-times: `2022-09-29T16:11:00.164747+00:00`, UTC, at most 7 fractional digits with
/// trailing zeros left out (no fraction at all on a whole second), as System.Text.Json writes.
pub(crate) fn is_acs_datetime(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() < 25 || !s.ends_with("+00:00") {
        return false;
    }
    let head = b.len() >= 19
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    let frac = &s[19..s.len() - 6];
    head && (frac.is_empty()
        || (frac.len() >= 2
            && frac.len() <= 8
            && frac.starts_with('.')
            && frac[1..].bytes().all(|c| c.is_ascii_digit())
            && !frac.ends_with('0')))
}

fn is_jwt(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Compares a success body by shape: the same keys, the same JSON types, and the formats of
/// the values whose format clients rely on.
fn shape(path: &str, key: &str, acs: &Value, ours: &Value, diffs: &mut Vec<String>) {
    match (acs, ours) {
        (Value::Object(a), Value::Object(o)) => {
            for k in a.keys().filter(|k| !o.contains_key(*k)) {
                diffs.push(format!("{path}.{k} missing"));
            }
            for k in o.keys().filter(|k| !a.contains_key(*k)) {
                diffs.push(format!("{path}.{k} not in ACS's answer"));
            }
            for (k, v) in a {
                if let Some(ov) = o.get(k) {
                    shape(&format!("{path}.{k}"), k, v, ov, diffs);
                }
            }
        }
        (Value::Array(a), Value::Array(o)) => {
            if let (Some(first), false) = (a.first(), o.is_empty()) {
                for (i, ov) in o.iter().enumerate() {
                    shape(&format!("{path}[{i}]"), key, first, ov, diffs);
                }
            } else if !a.is_empty() {
                diffs.push(format!("{path} is empty"));
            }
        }
        (Value::String(_), Value::String(s)) => {
            let ok = match key {
                "expiresOn" | "lastTokenIssuedAt" => is_acs_datetime(s),
                "token" => is_jwt(s),
                "id" => s.starts_with("8:acs:"),
                _ => true,
            };
            if !ok {
                diffs.push(format!("{path} {s:?} is not in ACS's format for {key}"));
            }
        }
        (Value::Number(_), Value::Number(_))
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Null, Value::Null) => {}
        (a, o) => diffs.push(format!("{path} is {o} (ACS {a})")),
    }
}

fn expires_on(body: &Value) -> Option<time::OffsetDateTime> {
    let s = body
        .get("expiresOn")
        .or_else(|| body.get("accessToken").and_then(|t| t.get("expiresOn")))?
        .as_str()?;
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// A token asked for `minutes` expires that long from now (a minute either way).
fn check_lifetime(minutes: i64, expires_on: time::OffsetDateTime, diffs: &mut Vec<String>) {
    let left = (expires_on - SystemClock.now()).whole_seconds();
    if (left - minutes * 60).abs() > 60 {
        diffs.push(format!("expiresOn is {left} s away, asked for {minutes} min"));
    }
}

#[test]
fn acs_datetime_shapes() {
    assert!(is_acs_datetime("2022-09-29T16:11:00.164747+00:00"));
    assert!(is_acs_datetime("2023-03-13T10:47:55.4184495+00:00"));
    assert!(is_acs_datetime("2023-03-13T10:47:55+00:00"));
    assert!(!is_acs_datetime("2023-03-13T10:47:55.4184490+00:00"), "trailing zero");
    assert!(!is_acs_datetime("2023-03-13T10:47:55.41844951+00:00"), "8 digits");
    assert!(!is_acs_datetime("2023-03-13T10:47:55.4Z"));
    assert!(is_correlation_vector("hQ8tA/+ItECeWc1KjBStEg.0"));
    assert!(is_correlation_vector("h6pePzl4K06YWXtFnuxmOA.2.0"));
    assert!(!is_correlation_vector("hQ8tA_-ItECeWc1KjBStEg.0"), "URL-safe alphabet");
}
