//! The built-in Entra authority (`entra_listen`): its documents, its grants and errors, and
//! its tokens used against the Identity API and the Teams exchange.

use std::sync::Arc;

use acs_identity_core::clock::Clock as _;
use acs_identity_core::SystemClock;
use acs_identity_server::authority::directory::{
    Application, Secret, Tenant, User, DEV_APP_OBJECT_ID, DEV_CLIENT_ID, DEV_CLIENT_SECRET,
    DEV_PASSWORD, DEV_TENANT_ID, DEV_USERNAME, DEV_USER_OBJECT_ID,
};
use acs_identity_testkit::{jwt_payload, TestServer};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ACS_SCOPE: &str = "https://communication.azure.com//.default";
const TEAMS_SCOPES: &str = "https://auth.msft.communication.azure.com/Teams.ManageCalls https://auth.msft.communication.azure.com/Teams.ManageChats";

async fn dev_server() -> TestServer {
    TestServer::start_with(
        |c| {
            c.dev = true;
            c.entra_listen = Some("127.0.0.1:0".parse().expect("addr"));
        },
        Arc::new(SystemClock),
    )
    .await
}

struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    fn new(s: &TestServer) -> Client {
        let ca = std::fs::read(s.ca_path()).expect("CA");
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("pem"))
            .no_proxy()
            .build()
            .expect("client");
        let base = s.inner().entra_authority().expect("authority").base().to_owned();
        Client { base, http }
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self.http.get(format!("{}{path}", self.base)).send().await.expect("GET");
        let status = r.status();
        (status, r.json().await.expect("JSON"))
    }

    async fn token(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let r =
            self.http.post(format!("{}{path}", self.base)).form(form).send().await.expect("POST");
        let status = r.status();
        let text = r.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")))
    }
}

fn client_credentials<'a>(secret: &'a str, scope: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "client_credentials"),
        ("client_id", DEV_CLIENT_ID),
        ("client_secret", secret),
        ("scope", scope),
        ("client_info", "1"),
    ]
}

fn password<'a>(username: &'a str, password: &'a str, scope: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "password"),
        ("client_id", DEV_CLIENT_ID),
        ("username", username),
        ("password", password),
        ("scope", scope),
        ("client_info", "1"),
    ]
}

async fn create_with_bearer(s: &TestServer, token: &str) -> StatusCode {
    let r = s
        .request(Method::POST, "/identities?api-version=2023-10-01")
        .unsigned()
        .header("authorization", &format!("Bearer {token}"))
        .send()
        .await;
    r.status
}

#[tokio::test]
async fn client_credentials_tokens_call_the_identity_api_over_https() {
    let s = dev_server().await;
    let c = Client::new(&s);
    let (status, config) =
        c.get(&format!("/{DEV_TENANT_ID}/v2.0/.well-known/openid-configuration")).await;
    assert_eq!(status, StatusCode::OK);
    let issuer = format!("{}/{DEV_TENANT_ID}/v2.0", c.base);
    assert_eq!(config["issuer"], issuer.as_str());
    let token_endpoint = config["token_endpoint"].as_str().expect("token_endpoint");
    assert_eq!(token_endpoint, format!("{}/{DEV_TENANT_ID}/oauth2/v2.0/token", c.base));
    assert!(config["authorization_endpoint"].is_string());
    let jwks_path = config["jwks_uri"].as_str().expect("jwks_uri").replace(&c.base, "");
    let (_, jwks) = c.get(&jwks_path).await;

    let path = token_endpoint.replace(&c.base, "");
    let (status, body) = c.token(&path, &client_credentials(DEV_CLIENT_SECRET, ACS_SCOPE)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_i64().is_some_and(|e| e > 3000), "{body}");
    let token = body["access_token"].as_str().expect("access_token");
    let claims = jwt_payload(token);
    assert_eq!(claims["iss"], issuer.as_str());
    assert_eq!(claims["aud"], "https://communication.azure.com/");
    assert_eq!(claims["tid"], DEV_TENANT_ID);
    assert_eq!(claims["azp"], DEV_CLIENT_ID);
    assert_eq!(claims["oid"], DEV_APP_OBJECT_ID);
    assert_eq!(claims["idtyp"], "app");
    assert_eq!(claims["ver"], "2.0");
    let now = SystemClock.now().unix_timestamp();
    assert!(claims["exp"].as_i64().unwrap() > now && claims["nbf"].as_i64().unwrap() <= now);
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap())
            .unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(jwks["keys"][0]["kid"], header["kid"]);

    assert_eq!(create_with_bearer(&s, token).await, StatusCode::CREATED);
    // Bearer tokens are for HTTPS only, as with any trusted issuer.
    let r = s
        .request(Method::POST, "/identities?api-version=2023-10-01")
        .unsigned()
        .plain_http()
        .header("authorization", &format!("Bearer {token}"))
        .send()
        .await;
    r.assert_error(401, "Denied");

    // The `adfs` route (AZURE_TENANT_ID=adfs): its own document, the same tenant's tokens.
    let (status, adfs) = c.get("/adfs/.well-known/openid-configuration").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(adfs["issuer"], format!("{}/adfs", c.base).as_str());
    let adfs_token = adfs["token_endpoint"].as_str().unwrap().replace(&c.base, "");
    let (status, body) =
        c.token(&adfs_token, &client_credentials(DEV_CLIENT_SECRET, ACS_SCOPE)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(jwt_payload(token)["iss"], issuer.as_str());
    assert_eq!(create_with_bearer(&s, token).await, StatusCode::CREATED);
}

#[tokio::test]
async fn password_grant_gives_an_account_and_a_teams_token_the_exchange_accepts() {
    let s = dev_server().await;
    let c = Client::new(&s);
    let scope = format!("{TEAMS_SCOPES} openid profile offline_access");
    let path = format!("/{DEV_TENANT_ID}/oauth2/v2.0/token");
    // Usernames are not case-sensitive.
    let (status, body) =
        c.token(&path, &password(&DEV_USERNAME.to_uppercase(), DEV_PASSWORD, &scope)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], TEAMS_SCOPES);
    let id = jwt_payload(body["id_token"].as_str().expect("id_token"));
    assert_eq!(
        (&id["oid"], &id["tid"], &id["aud"], &id["preferred_username"]),
        (
            &json!(DEV_USER_OBJECT_ID),
            &json!(DEV_TENANT_ID),
            &json!(DEV_CLIENT_ID),
            &json!(DEV_USERNAME)
        )
    );
    let info: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD.decode(body["client_info"].as_str().expect("client_info")).unwrap(),
    )
    .unwrap();
    assert_eq!(info, json!({"uid": DEV_USER_OBJECT_ID, "utid": DEV_TENANT_ID}));
    let teams_token = body["access_token"].as_str().unwrap();
    let claims = jwt_payload(teams_token);
    assert_eq!(claims["aud"], "https://auth.msft.communication.azure.com");
    assert_eq!(claims["scp"], "Teams.ManageCalls Teams.ManageChats");
    assert_eq!(claims["oid"], DEV_USER_OBJECT_ID);
    assert_eq!(claims["idtyp"], "user");

    let exchange = |user_id: &str| {
        let body = json!({"token": teams_token, "appId": DEV_CLIENT_ID, "userId": user_id});
        s.post("/teamsUser/:exchangeAccessToken?api-version=2023-10-01", body)
    };
    let r = exchange(DEV_USER_OBJECT_ID).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let acs = jwt_payload(r.json["token"].as_str().unwrap());
    assert!(
        acs["skypeid"].as_str().unwrap().ends_with(&format!("orgid:{DEV_USER_OBJECT_ID}")),
        "{acs}"
    );
    // Another user id than the token's is refused by the exchange.
    let r = exchange(DEV_APP_OBJECT_ID).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);

    // A delegated token for the Identity API works like the application's.
    let (status, body) = c.token(&path, &password(DEV_USERNAME, DEV_PASSWORD, ACS_SCOPE)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("id_token").is_none(), "no openid, no id token: {body}");
    assert_eq!(
        create_with_bearer(&s, body["access_token"].as_str().unwrap()).await,
        StatusCode::CREATED
    );

    let (status, realm) = c.get(&format!("/common/userrealm/{DEV_USERNAME}?api-version=1.0")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(realm["account_type"], "Managed");
    let (_, realm) = c.get("/common/userrealm/nobody@example.com?api-version=1.0").await;
    assert_eq!(realm["account_type"], "Unknown");
    let (status, discovery) = c
        .get(&format!(
            "/common/discovery/instance?api-version=1.1&authorization_endpoint=https://login.microsoftonline.com/{DEV_TENANT_ID}/oauth2/v2.0/authorize"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let endpoint = discovery["tenant_discovery_endpoint"].as_str().unwrap();
    assert!(endpoint.ends_with(&format!("/{DEV_TENANT_ID}/v2.0/.well-known/openid-configuration")));
}

fn assert_entra_error(status: StatusCode, body: &Value, want: (u16, &str, u64)) {
    assert_eq!(status.as_u16(), want.0, "{body}");
    assert_eq!(body["error"], want.1, "{body}");
    assert_eq!(body["error_codes"], json!([want.2]), "{body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(description.starts_with(&format!("AADSTS{}: ", want.2)), "{description}");
    for field in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
        assert!(body[field].is_string(), "{field}: {body}");
    }
}

#[tokio::test]
async fn wrong_credentials_and_requests_get_entras_errors() {
    let s = dev_server().await;
    let c = Client::new(&s);
    let path = format!("/{DEV_TENANT_ID}/oauth2/v2.0/token");
    let wrong_secret = "not-the-secret";
    let (st, body) = c.token(&path, &client_credentials(wrong_secret, ACS_SCOPE)).await;
    assert_entra_error(st, &body, (401, "invalid_client", 7000215));
    assert!(!body.to_string().contains(wrong_secret));
    let (st, body) = c.token(&path, &password(DEV_USERNAME, "wrong-password", ACS_SCOPE)).await;
    assert_entra_error(st, &body, (400, "invalid_grant", 50126));
    assert!(!body.to_string().contains("wrong-password"));
    let (st, body) = c.token(&path, &password("nobody@example.com", DEV_PASSWORD, ACS_SCOPE)).await;
    assert_entra_error(st, &body, (400, "invalid_grant", 50034));

    let unknown_client = [
        ("grant_type", "client_credentials"),
        ("client_id", "00000000-0000-0000-0000-000000000001"),
        ("client_secret", "x"),
        ("scope", ACS_SCOPE),
    ];
    let (st, body) = c.token(&path, &unknown_client).await;
    assert_entra_error(st, &body, (400, "unauthorized_client", 700016));
    let no_secret =
        [("grant_type", "client_credentials"), ("client_id", DEV_CLIENT_ID), ("scope", ACS_SCOPE)];
    let (st, body) = c.token(&path, &no_secret).await;
    assert_entra_error(st, &body, (401, "invalid_client", 7000218));
    let (st, body) = c.token(&path, &[("client_id", DEV_CLIENT_ID)]).await;
    assert_entra_error(st, &body, (400, "invalid_request", 900144));
    let (st, body) = c.token(&path, &[("grant_type", "authorization_code")]).await;
    assert_entra_error(st, &body, (400, "unsupported_grant_type", 70003));
    let (st, body) = c
        .token(
            &path,
            &client_credentials(
                DEV_CLIENT_SECRET,
                "https://communication.azure.com/user_impersonation",
            ),
        )
        .await;
    assert_entra_error(st, &body, (400, "invalid_scope", 1002012));
    let (st, body) = c
        .token(&path, &client_credentials(DEV_CLIENT_SECRET, "https://vault.azure.net/.default"))
        .await;
    assert_entra_error(st, &body, (400, "invalid_resource", 500011));
    let (st, body) = c
        .token(
            "/11111111-2222-3333-4444-555555555555/oauth2/v2.0/token",
            &client_credentials(DEV_CLIENT_SECRET, ACS_SCOPE),
        )
        .await;
    assert_entra_error(st, &body, (400, "invalid_request", 90002));
    let (st, body) = c.get("/contoso.example/v2.0/.well-known/openid-configuration").await;
    assert_entra_error(st, &body, (400, "invalid_tenant", 90002));
    // Garbage is a missing parameter, not a failure.
    let r = c
        .http
        .post(format!("{}{path}", c.base))
        .header("content-type", "application/json")
        .body("{\"grant_type\": [1, 2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (st, _) = c.get("/nothing/here").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_configured_directory_decides_who_gets_which_token() {
    let tenant_id = "5e2b0c55-0000-4000-8000-00000000aaaa";
    let tenant = Tenant {
        tenant_id: tenant_id.to_owned(),
        applications: vec![
            Application {
                client_id: "5e2b0c55-0000-4000-8000-000000000001".to_owned(),
                client_secret: Some(Secret::new("s1")),
                object_id: None,
                display_name: None,
                acs_access: true,
            },
            Application {
                client_id: "5e2b0c55-0000-4000-8000-000000000002".to_owned(),
                client_secret: Some(Secret::new("s2")),
                object_id: None,
                display_name: None,
                acs_access: false,
            },
        ],
        users: vec![User {
            username: "no.teams@contoso.example".to_owned(),
            password: Secret::new("pw"),
            object_id: "5e2b0c55-0000-4000-8000-000000000003".to_owned(),
            display_name: None,
            teams_enabled: false,
        }],
    };
    let s = TestServer::start_with(
        move |c| {
            c.entra_listen = Some("127.0.0.1:0".parse().expect("addr"));
            c.entra_directory.tenants.push(tenant);
        },
        Arc::new(SystemClock),
    )
    .await;
    let c = Client::new(&s);
    let kid = |token: &str| token.split('.').next().unwrap().to_owned();
    let path = format!("/{tenant_id}/oauth2/v2.0/token");
    let form = |id: &'static str, secret: &'static str| {
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
            ("scope", ACS_SCOPE),
        ]
    };
    let (st, body) = c.token(&path, &form("5e2b0c55-0000-4000-8000-000000000001", "s1")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(create_with_bearer(&s, &token).await, StatusCode::CREATED);
    let (st, body) = c.token(&path, &form("5e2b0c55-0000-4000-8000-000000000002", "s2")).await;
    assert_entra_error(st, &body, (400, "invalid_grant", 501051));
    // No development tenant without `dev`.
    let (st, _) = c.get(&format!("/{DEV_TENANT_ID}/v2.0/.well-known/openid-configuration")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let teams = [
        ("grant_type", "password"),
        ("client_id", "5e2b0c55-0000-4000-8000-000000000001"),
        ("username", "no.teams@contoso.example"),
        ("password", "pw"),
        ("scope", TEAMS_SCOPES),
    ];
    let (st, body) = c.token(&path, &teams).await;
    assert_entra_error(st, &body, (400, "invalid_grant", 50105));

    // The signing key is kept in the data directory: the same key after a restart.
    let s = s.restart().await;
    let c = Client::new(&s);
    let (st, body) = c.token(&path, &form("5e2b0c55-0000-4000-8000-000000000001", "s1")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(kid(body["access_token"].as_str().unwrap()), kid(&token));
}

/// `CONNECT target` sent to the proxy at `proxy` (`http://host:port`); the status line.
async fn connect_status(proxy: &str, target: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream =
        tokio::net::TcpStream::connect(proxy.trim_start_matches("http://")).await.expect("proxy");
    let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") {
        assert_eq!(stream.read(&mut byte).await.expect("read"), 1, "proxy closed: {head:?}");
        head.push(byte[0]);
    }
    String::from_utf8(head).expect("status line").trim_end().to_owned()
}

#[tokio::test]
async fn the_proxy_answers_for_entras_hosts_and_reaches_nothing_else() {
    let s = TestServer::start_with(
        |c| {
            c.dev = true;
            c.entra_listen = Some("127.0.0.1:0".parse().expect("addr"));
            c.entra_proxy_listen = Some("127.0.0.1:0".parse().expect("addr"));
        },
        Arc::new(SystemClock),
    )
    .await;
    let authority = s.inner().entra_authority().expect("authority");
    let proxy = authority.proxy().expect("the proxy runs").to_owned();
    assert_eq!(authority.ready_info()["proxy"], proxy.as_str());
    let ca = std::fs::read(s.ca_path()).expect("CA");
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("pem"))
        .proxy(reqwest::Proxy::all(&proxy).expect("proxy"))
        .build()
        .expect("client");
    let get = |url: String| {
        let http = http.clone();
        async move {
            let r = http.get(&url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
            assert_eq!(r.status(), StatusCode::OK, "{url}");
            r.json::<Value>().await.expect("JSON")
        }
    };

    // Instance discovery, which the libraries cannot be told to skip, names the public cloud.
    let discovery = get(format!(
        "https://login.microsoftonline.com/common/discovery/instance?api-version=1.1&authorization_endpoint=https://login.microsoftonline.com/{DEV_TENANT_ID}/oauth2/v2.0/authorize"
    ))
    .await;
    assert_eq!(
        discovery["tenant_discovery_endpoint"],
        format!(
            "https://login.microsoftonline.com/{DEV_TENANT_ID}/v2.0/.well-known/openid-configuration"
        )
        .as_str()
    );
    assert_eq!(
        discovery["metadata"][0]["aliases"],
        json!([
            "login.microsoftonline.com",
            "login.windows.net",
            "login.microsoft.com",
            "sts.windows.net"
        ])
    );
    // Every alias has the endpoints on itself, and Entra's public-cloud issuer.
    let issuer = format!("https://login.microsoftonline.com/{DEV_TENANT_ID}/v2.0");
    let config = get(format!(
        "https://login.microsoft.com/{DEV_TENANT_ID}/v2.0/.well-known/openid-configuration"
    ))
    .await;
    assert_eq!(config["issuer"], issuer.as_str());
    let token_endpoint = config["token_endpoint"].as_str().expect("token_endpoint");
    assert_eq!(
        token_endpoint,
        format!("https://login.microsoft.com/{DEV_TENANT_ID}/oauth2/v2.0/token")
    );
    let jwks = get(config["jwks_uri"].as_str().expect("jwks_uri").to_owned()).await;
    assert_eq!(jwks, get(format!("{}/common/discovery/v2.0/keys", authority.base())).await);
    let r = http
        .post(format!("https://login.microsoftonline.com/{DEV_TENANT_ID}/oauth2/v2.0/token"))
        .form(&client_credentials(DEV_CLIENT_SECRET, ACS_SCOPE))
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), StatusCode::OK);
    let token = r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(jwt_payload(&token)["iss"], issuer.as_str());
    // The service trusts that issuer with the authority's keys …
    assert_eq!(create_with_bearer(&s, &token).await, StatusCode::CREATED);
    // … and is reached through the same proxy.
    let r = http
        .post(format!("{}/identities?api-version=2023-10-01", s.endpoint()))
        .bearer_auth(&token)
        .send()
        .await
        .expect("through the proxy");
    assert_eq!(r.status(), StatusCode::CREATED);

    // Nothing else: other hosts, other ports, other local ports, plain HTTP requests.
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    for target in [
        "example.com:443".to_owned(),
        "graph.microsoft.com:443".to_owned(),
        "login.microsoftonline.com:80".to_owned(),
        "login.microsoftonline.us:443".to_owned(),
        unused.to_string(),
    ] {
        let status = connect_status(&proxy, &target).await;
        assert!(status.starts_with("HTTP/1.1 403"), "CONNECT {target}: {status}");
    }
    let r = http.get("http://example.com/").send().await.expect("the proxy answers");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(http.get("https://example.com/").send().await.is_err());
    let api = s.inner().https_addr();
    assert_eq!(connect_status(&proxy, &api.to_string()).await, "HTTP/1.1 200 OK");
    // msal-node's proxy mode names no port (and speaks plain HTTP in the tunnel).
    assert_eq!(connect_status(&proxy, "login.microsoftonline.com").await, "HTTP/1.1 200 OK");
    assert!(connect_status(&proxy, "example.com").await.starts_with("HTTP/1.1 403"));
}
