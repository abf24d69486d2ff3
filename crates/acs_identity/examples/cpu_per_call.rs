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

use std::sync::Arc;
use std::time::Instant;

use acs_identity::{
    models::CommunicationTokenScope, CommunicationIdentityClient,
    CommunicationIdentityClientOptions, CommunicationKeyCredential,
};
use azure_core::http::Transport;

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
}

fn parse_args() -> Result<Args, Box<dyn std::error::Error>> {
    let mut args = Args {
        connection_string: std::env::var("COMMUNICATION_SERVICES_CONNECTION_STRING")
            .unwrap_or_default(),
        endpoint: None,
        ca_file: None,
        pairs: 2000,
        warmup: 100,
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
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if args.connection_string.is_empty() {
        return Err(
            "pass --connection-string or set COMMUNICATION_SERVICES_CONNECTION_STRING".into()
        );
    }
    if args.pairs == 0 {
        return Err("--pairs must be at least 1".into());
    }
    Ok(args)
}

fn client(args: &Args) -> Result<CommunicationIdentityClient, Box<dyn std::error::Error>> {
    let mut options = CommunicationIdentityClientOptions::default();
    if let Some(ca) = &args.ca_file {
        let pem = std::fs::read(ca)?;
        let ca = azure_core_reqwest::Certificate::from_pem(&pem)?;
        let http = azure_core_reqwest::Client::builder().tls_certs_merge([ca]).build()?;
        options.client_options.transport = Some(Transport::new(Arc::new(http)));
    }
    let client = match &args.endpoint {
        Some(endpoint) => {
            let key = args
                .connection_string
                .split(';')
                .find_map(|part| {
                    let (name, value) = part.split_once('=')?;
                    name.trim().eq_ignore_ascii_case("accesskey").then(|| value.trim())
                })
                .ok_or("the connection string has no accesskey")?;
            CommunicationIdentityClient::with_key_credential(
                endpoint,
                CommunicationKeyCredential::new(key.to_owned())?,
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

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let client = client(&args)?;
    for _ in 0..args.warmup {
        pair(&client).await?;
    }
    let (cpu0, t0) = (Cpu::now()?, Instant::now());
    for _ in 0..args.pairs {
        pair(&client).await?;
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
