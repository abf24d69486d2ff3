//! The operation table (`acs_identity_server::operation`) is what the router serves: every
//! operation is routed, checks its api-version before anything else, names the versions of its
//! path in `api-supported-versions`, and the audit log knows every operation that writes.

use acs_identity_core::ApiVersion;
use acs_identity_server::operation::{Auth, Operation};
use acs_identity_testkit::{encode_id, uuid_like, TestServer};
use reqwest::{Method, StatusCode};

/// The path of `op` with its parameters filled in.
fn concrete(op: Operation, user: &str) -> String {
    op.spec()
        .path
        .replace("{id}", &encode_id(user))
        .replace("{tenant_id}", &uuid_like())
        .replace("{object_id}", &uuid_like())
}

#[tokio::test]
async fn every_operation_is_routed_and_gated_by_its_versions() {
    let s = TestServer::start().await;
    let user = s.create_user().await;
    for op in Operation::ALL {
        let spec = op.spec();
        let method = Method::from_bytes(spec.method.as_str().as_bytes()).unwrap();
        let path = concrete(op, &user);
        let Some(gate) = spec.versions else {
            // Not an ACS operation: no api-version is read, and the route exists.
            let r = s.request(method.clone(), &path).body(b"{}".to_vec()).send().await;
            assert!(
                r.status != StatusCode::NOT_FOUND && r.status != StatusCode::METHOD_NOT_ALLOWED,
                "{op:?}: {}",
                r.text
            );
            continue;
        };
        // The union of the versions of every operation on the same path.
        let served: Vec<&str> = ApiVersion::ALL
            .into_iter()
            .filter(|&v| {
                Operation::ALL
                    .into_iter()
                    .any(|o| o.spec().path == spec.path && o.spec().versions.is_some_and(|g| g(v)))
            })
            .map(ApiVersion::as_str)
            .collect();
        for version in ApiVersion::ALL.into_iter().map(ApiVersion::as_str).chain(["2099-01-01"]) {
            let r = s
                .request(method.clone(), &format!("{path}?api-version={version}"))
                .body(b"{}".to_vec())
                .send()
                .await;
            let ok = version.parse::<ApiVersion>().is_ok_and(gate);
            if ok {
                // Past the version check, in the handler: no router or version error.
                let code = r.json["error"]["code"].as_str().unwrap_or("");
                let message = r.json["error"]["message"].as_str().unwrap_or("");
                assert!(
                    !["UnsupportedApiVersion", "MethodNotAllowed"].contains(&code)
                        && message != "The requested resource does not exist.",
                    "{op:?} {version}: {}",
                    r.text
                );
            } else {
                r.assert_error(400, "UnsupportedApiVersion");
            }
            // Authenticated operations answer with the versions of their path whatever the
            // outcome; the exchanges, authenticated by their own token, too.
            assert_eq!(
                r.header("api-supported-versions"),
                Some(served.join(", ").as_str()),
                "{op:?} {version}"
            );
        }
        let missing = s.request(method.clone(), &path).body(b"{}".to_vec()).send().await;
        missing.assert_error(400, "ApiVersionUnspecified");
        if spec.auth == Auth::Resource {
            // Authentication comes first: an unsigned request is refused whatever its version.
            let r = s
                .request(method, &format!("{path}?api-version=2099-01-01"))
                .unsigned()
                .send()
                .await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{op:?}: {}", r.text);
        }
    }
}
