//! `examples/entra_credential.rs`, run as a program against the service's built-in Entra
//! authority: `azure_identity`'s `ClientSecretCredential`, configured only by environment
//! variables, authenticates the client.

use super::*;
use std::process::Command;

/// The example's binary, built beside this test's (`cargo test` and nextest build examples).
fn example() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target directory");
    let path =
        dir.join("examples").join(format!("entra_credential{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is missing: build it with `cargo build -p acs_identity --examples`",
        path.display()
    );
    path
}

/// Runs the example with only `vars` (and `PATH`) in its environment.
fn run_example(vars: &[(&str, String)]) -> std::process::Output {
    let mut command = Command::new(example());
    command.env_clear().envs(vars.iter().map(|(k, v)| (*k, v)));
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command.output().expect("run the example")
}

#[tokio::test]
async fn the_entra_credential_example_creates_a_user_through_the_local_authority() {
    let server = TestServer::start_with(
        |c| {
            c.dev = true;
            c.entra_listen = Some("127.0.0.1:0".parse().unwrap());
            c.entra_proxy_listen = Some("127.0.0.1:0".parse().unwrap());
        },
        Arc::new(acs_identity_core::SystemClock),
    )
    .await;
    let info = server.inner().entra_authority().expect("authority").ready_info();
    let text = |k: &str| info[k].as_str().expect(k).to_owned();
    let vars = |route: (&'static str, String), secret: String| {
        vec![
            ("COMMUNICATION_SERVICES_ENDPOINT", server.endpoint()),
            ("SSL_CERT_FILE", server.ca_path().display().to_string()),
            ("AZURE_TENANT_ID", text("tenantId")),
            ("AZURE_CLIENT_ID", text("clientId")),
            ("AZURE_CLIENT_SECRET", secret),
            route,
        ]
    };
    let prefix = format!("created and deleted user 8:acs:{}_", server.resource_id());
    // The authority host in AZURE_AUTHORITY_HOST, or Entra's own host through the proxy.
    for route in [("AZURE_AUTHORITY_HOST", text("authority")), ("HTTPS_PROXY", text("proxy"))] {
        let name = route.0;
        let vars = vars(route, text("clientSecret"));
        let output = tokio::task::spawn_blocking(move || run_example(&vars)).await.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.starts_with(&prefix),
            "with {name}: {}\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // A wrong secret gets Entra's invalid_client, and the secret is not shown.
    let vars = vars(("AZURE_AUTHORITY_HOST", text("authority")), "not-the-secret".to_owned());
    let output = tokio::task::spawn_blocking(move || run_example(&vars)).await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("AADSTS7000215"), "{stderr}");
    assert!(!stderr.contains("not-the-secret"), "{stderr}");
}
