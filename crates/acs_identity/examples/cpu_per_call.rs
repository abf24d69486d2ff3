//! Measures this client's own CPU time per `create_user` + `get_token(["chat"])` pair.
//!
//! Runs `--warmup` pairs, then `--pairs` sequential pairs on a current-thread runtime, and
//! prints one JSON line with the CPU the whole process used during the measured loop:
//!
//! ```text
//! {"client":"rust","pairs":N,"cpu_us_per_pair":…,"user_us":…,"sys_us":…,"wall_s":…}
//! ```
//!
//! `cpu_us_per_pair` and the sum `user_us + sys_us` come from `CLOCK_PROCESS_CPUTIME_ID`
//! (nanoseconds, all threads of the process: the same total `getrusage(RUSAGE_SELF)` reports);
//! the split into user and system time is read from `/proc/self/stat`, whose resolution is one
//! clock tick (10 ms), and scaled to that total.
//!
//! `cargo xtask client-bench` runs it next to the official Python and JS SDKs (see
//! BENCHMARKS.md). By hand, against the plain-HTTP listener of `acs-identity serve
//! --http-listen 127.0.0.1:8080`:
//!
//! ```sh
//! cargo run --release -p acs_identity --example cpu_per_call -- \
//!     --endpoint http://127.0.0.1:8080 --connection-string "endpoint=…;accesskey=…" --pairs 2000
//! ```
//!
//! `--endpoint` overrides the connection string's endpoint (the key still comes from the
//! connection string). For an HTTPS endpoint with the development CA add `--ca-file
//! <data-dir>/tls/ca.pem`.
//!
//! `--transport reqwest` sends through `azure_core`'s default `reqwest` transport instead of the
//! client's own. `--mode` picks what a measured pair is, for reference figures:
//!
//! - `client` (default): `create_user` and `get_token` through the public client API;
//! - `transport`: the same two requests, built and signed once before the loop (a create and a
//!   token for one existing user), each sent through `Http1Transport` and its response read —
//!   what the client costs without its pipeline, signing and JSON;
//! - `socket`: those requests' bytes written to a blocking `std::net::TcpStream` and each
//!   response read to its `content-length` — what the two HTTP exchanges cost the process with
//!   no HTTP library and no async runtime, mostly the kernel's share.

use std::sync::Arc;
use std::time::Instant;

use acs_identity::{
    acs_common::{
        connection_string::ConnectionString,
        hmac::{host_for_signing, HmacAuthenticationPolicy},
        transport::{Http1Transport, Http1TransportOptions},
    },
    models::CommunicationTokenScope,
    CommunicationIdentityClient, CommunicationIdentityClientOptions, CommunicationKeyCredential,
    CommunicationUserIdentifier,
};
use azure_core::http::{HttpClient, Method, Request, Transport};

/// CPU time of the whole process, from `CLOCK_PROCESS_CPUTIME_ID` and `/proc/self/stat`.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    total_ns: u128,
    user_ticks: u64,
    sys_ticks: u64,
}

impl Cpu {
    fn now() -> Result<Cpu, Box<dyn std::error::Error>> {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
        let total_ns = t.tv_sec as u128 * 1_000_000_000 + t.tv_nsec as u128;
        let stat = std::fs::read_to_string("/proc/self/stat")?;
        // Fields after the command name (which is in parentheses and may hold spaces):
        // state is field 3, utime field 14, stime field 15.
        let rest = stat.rsplit_once(')').ok_or("malformed /proc/self/stat")?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let user_ticks = fields.get(11).ok_or("no utime in /proc/self/stat")?.parse()?;
        let sys_ticks = fields.get(12).ok_or("no stime in /proc/self/stat")?.parse()?;
        Ok(Cpu { total_ns, user_ticks, sys_ticks })
    }
}

#[derive(Debug)]
struct Args {
    connection_string: String,
    endpoint: Option<String>,
    ca_file: Option<String>,
    pairs: u64,
    warmup: u64,
    /// `default` (the client's own choice) or `reqwest` (azure_core's default transport).
    transport: String,
    /// `client`, `transport` or `socket`: see the module docs.
    mode: String,
}

fn parse_args() -> Result<Args, Box<dyn std::error::Error>> {
    let mut args = Args {
        connection_string: std::env::var("COMMUNICATION_SERVICES_CONNECTION_STRING")
            .unwrap_or_default(),
        endpoint: None,
        ca_file: None,
        pairs: 2000,
        warmup: 100,
        transport: "default".to_owned(),
        mode: "client".to_owned(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--connection-string" => args.connection_string = value()?,
            "--endpoint" => args.endpoint = Some(value()?),
            "--ca-file" => args.ca_file = Some(value()?),
            "--pairs" => args.pairs = value()?.parse()?,
            "--warmup" => args.warmup = value()?.parse()?,
            "--transport" => args.transport = value()?,
            "--mode" => args.mode = value()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if args.connection_string.is_empty() {
        return Err(
            "pass --connection-string or set COMMUNICATION_SERVICES_CONNECTION_STRING".into()
        );
    }
    if !matches!(args.transport.as_str(), "default" | "reqwest") {
        return Err("--transport must be default or reqwest".into());
    }
    if !matches!(args.mode.as_str(), "client" | "transport" | "socket") {
        return Err("--mode must be client, transport or socket".into());
    }
    if args.pairs == 0 {
        return Err("--pairs must be at least 1".into());
    }
    Ok(args)
}

fn client(args: &Args) -> Result<CommunicationIdentityClient, Box<dyn std::error::Error>> {
    let mut options = CommunicationIdentityClientOptions::default();
    // The chosen transport, trusting `--ca-file` too when one is given.
    let pem = args.ca_file.as_ref().map(std::fs::read).transpose()?;
    if args.transport == "reqwest" {
        let http = match &pem {
            None => azure_core::http::new_http_client(None),
            // azure_core's settings for its reqwest client, plus the CA.
            Some(pem) => Arc::new(
                azure_core_reqwest::Client::builder()
                    .connect_timeout(std::time::Duration::from_secs(20))
                    .read_timeout(std::time::Duration::from_secs(60))
                    .redirect(azure_core_reqwest::redirect::Policy::none())
                    .tls_certs_merge([azure_core_reqwest::Certificate::from_pem(pem)?])
                    .build()?,
            ),
        };
        options.client_options.transport = Some(Transport::new(http));
    } else if let Some(pem) = &pem {
        let mut transport = Http1TransportOptions::default();
        transport.add_root_certificates_pem(pem)?;
        options.client_options.transport =
            Some(Transport::new(Arc::new(Http1Transport::with_options(transport))));
    }
    let client = match &args.endpoint {
        Some(endpoint) => {
            let key = access_key(&args.connection_string)?;
            CommunicationIdentityClient::with_key_credential(
                endpoint,
                CommunicationKeyCredential::new(key)?,
                Some(options),
            )?
        }
        None => CommunicationIdentityClient::from_connection_string(
            &args.connection_string,
            Some(options),
        )?,
    };
    Ok(client)
}

/// The access key of a connection string.
fn access_key(connection_string: &str) -> azure_core::Result<String> {
    Ok(ConnectionString::parse(connection_string)?.access_key().secret().to_owned())
}

async fn pair(client: &CommunicationIdentityClient) -> azure_core::Result<()> {
    let user = client.create_user(None).await?.into_model()?;
    let token =
        client.get_token(&user, &[CommunicationTokenScope::Chat], None).await?.into_model()?;
    if token.token.secret().is_empty() {
        return Err(azure_core::Error::with_message(
            azure_core::error::ErrorKind::DataConversion,
            "the service returned an empty token",
        ));
    }
    Ok(())
}

/// The two requests of a pair, built and signed once: `POST /identities` and
/// `POST /identities/{id}/:issueAccessToken` for one existing user.
fn signed_pair(
    args: &Args,
    client: &CommunicationIdentityClient,
    user: &CommunicationUserIdentifier,
) -> Result<[Request; 2], Box<dyn std::error::Error>> {
    let key = access_key(&args.connection_string)?;
    let policy = HmacAuthenticationPolicy::new(CommunicationKeyCredential::new(key)?);
    let version = client.api_version();
    let id = acs_identity_testkit::encode_id(&user.id);
    let build = |path: String, body: &str| -> Result<Request, Box<dyn std::error::Error>> {
        let mut request = Request::new(client.endpoint().join(&path)?, Method::Post);
        request.insert_header("accept", "application/json");
        request.insert_header("content-type", "application/json");
        request.set_body(body.to_owned());
        policy.sign(&mut request)?;
        Ok(request)
    };
    Ok([
        build(format!("identities?api-version={version}"), "{}")?,
        build(
            format!("identities/{id}/:issueAccessToken?api-version={version}"),
            r#"{"scopes":["chat"]}"#,
        )?,
    ])
}

/// One request with its response read in full, straight through `Http1Transport`.
async fn send_raw(
    transport: &Http1Transport,
    request: &Request,
) -> Result<(), Box<dyn std::error::Error>> {
    let response = transport.execute_request(request).await?;
    let status = u16::from(response.status());
    let body = response.into_body().collect().await?;
    if !(200..300).contains(&status) || body.is_empty() {
        return Err(format!("the service answered {status}").into());
    }
    Ok(())
}

/// The request as it goes on the wire, for the `socket` mode.
fn wire_bytes(request: &Request) -> Vec<u8> {
    let url = request.url();
    let authority = host_for_signing(url).unwrap_or_default();
    let mut head = format!(
        "{} {}?{} HTTP/1.1\r\nhost: {authority}\r\n",
        request.method().as_str(),
        url.path(),
        url.query().unwrap_or_default(),
    );
    let body = match request.body() {
        azure_core::http::Body::Bytes(bytes) => bytes.to_vec(),
        azure_core::http::Body::SeekableStream(_) => Vec::new(),
    };
    for (name, value) in request.headers().iter() {
        head.push_str(&format!("{}: {}\r\n", name.as_str(), value.as_str()));
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&body);
    bytes
}

/// Writes `request` and reads one whole `content-length` response on a blocking socket.
fn send_on_socket(
    socket: &mut std::net::TcpStream,
    request: &[u8],
    buffer: &mut Vec<u8>,
) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::{Read, Write};
    socket.write_all(request)?;
    buffer.clear();
    let mut chunk = [0u8; 8192];
    loop {
        let read = socket.read(&mut chunk)?;
        if read == 0 {
            return Err("the service closed the connection".into());
        }
        buffer.extend_from_slice(&chunk[..read]);
        let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = std::str::from_utf8(&buffer[..end])?.to_ascii_lowercase();
        if !head.starts_with("http/1.1 20") {
            return Err(
                format!("the service answered {}", head.lines().next().unwrap_or("")).into()
            );
        }
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .ok_or("the response has no content-length")?
            .trim()
            .parse()?;
        if buffer.len() >= end + 4 + length {
            return Ok(());
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let client = client(&args)?;
    for _ in 0..args.warmup {
        pair(&client).await?;
    }
    let user = client.create_user(None).await?.into_model()?;
    let (cpu0, t0);
    match args.mode.as_str() {
        "transport" => {
            let requests = signed_pair(&args, &client, &user)?;
            let transport = Http1Transport::new();
            send_raw(&transport, &requests[0]).await?;
            (cpu0, t0) = (Cpu::now()?, Instant::now());
            for _ in 0..args.pairs {
                for request in &requests {
                    send_raw(&transport, request).await?;
                }
            }
        }
        "socket" => {
            let requests = signed_pair(&args, &client, &user)?.map(|r| wire_bytes(&r));
            let url = client.endpoint();
            let host = url.host_str().ok_or("the endpoint has no host")?;
            let port = url.port_or_known_default().ok_or("the endpoint has no port")?;
            let mut socket = std::net::TcpStream::connect((host, port))?;
            socket.set_nodelay(true)?;
            let mut buffer = Vec::new();
            send_on_socket(&mut socket, &requests[0], &mut buffer)?;
            (cpu0, t0) = (Cpu::now()?, Instant::now());
            for _ in 0..args.pairs {
                for request in &requests {
                    send_on_socket(&mut socket, request, &mut buffer)?;
                }
            }
        }
        _ => {
            (cpu0, t0) = (Cpu::now()?, Instant::now());
            for _ in 0..args.pairs {
                pair(&client).await?;
            }
        }
    }
    let (cpu1, wall) = (Cpu::now()?, t0.elapsed());
    let total_us = (cpu1.total_ns - cpu0.total_ns) as f64 / 1000.0;
    let user_ticks = cpu1.user_ticks.saturating_sub(cpu0.user_ticks) as f64;
    let sys_ticks = cpu1.sys_ticks.saturating_sub(cpu0.sys_ticks) as f64;
    let user_share =
        if user_ticks + sys_ticks > 0.0 { user_ticks / (user_ticks + sys_ticks) } else { 1.0 };
    println!(
        "{{\"client\":\"rust\",\"pairs\":{},\"cpu_us_per_pair\":{:.1},\"user_us\":{:.0},\"sys_us\":{:.0},\"wall_s\":{:.3}}}",
        args.pairs,
        total_us / args.pairs as f64,
        total_us * user_share,
        total_us * (1.0 - user_share),
        wall.as_secs_f64()
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    // One thread: the process's CPU time is the client's own.
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(run(args))
}
