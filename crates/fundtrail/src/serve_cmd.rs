//! `fundtrail serve`, `rebuild` and `ledger mirror`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use fundtrail_audit::mirror::{write_atomic, Mirror};
use fundtrail_server::{ServerOptions, Tuning, Witnesses, LOG_KEY_FILE};
use fundtrail_service::SystemClock;
use fundtrail_store::StreamSettings;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "FUNDTRAIL_LISTEN")]
    listen: SocketAddr,
    /// Data directory: the embedded log (without --nats), the projections, the log key.
    #[arg(long, default_value = "fundtrail-data", env = "FUNDTRAIL_DATA")]
    data: PathBuf,
    /// NATS servers, comma-separated (`nats://a:4222,nats://b:4222`; the client
    /// fails over between them); the embedded sled log is used when absent. Also
    /// read from FUNDTRAIL_NATS. No credentials in URLs: see the --nats-* flags.
    #[arg(long, env = "FUNDTRAIL_NATS_URLS")]
    nats: Option<String>,
    #[command(flatten)]
    nats_auth: NatsAuthArgs,
    /// The log key (signs ledger checkpoints); generated in the data dir when absent.
    /// Replicas that serve one ledger share one log key.
    #[arg(long, env = "FUNDTRAIL_LOG_KEY")]
    log_key: Option<PathBuf>,
    /// The checkpoint origin (the log's name in notes and vkeys).
    #[arg(long, default_value = "fundtrail.local/ledger", env = "FUNDTRAIL_ORIGIN")]
    origin: String,
    /// Pin the trust anchor: only this key id may sign the genesis event.
    #[arg(long, env = "FUNDTRAIL_HOST_KEY")]
    host_key: Option<String>,
    /// How many days in the past an event's occurred_at may lie.
    #[arg(long, default_value_t = 7)]
    backdate_days: i64,
    /// Sign a checkpoint after this many new entries...
    #[arg(long, default_value_t = 1_000)]
    checkpoint_entries: u64,
    /// ... or after this many milliseconds with new entries.
    #[arg(long, default_value_t = 250)]
    checkpoint_interval_ms: u64,
    /// JetStream duplicate window in seconds (deduplication of resent event ids).
    #[arg(long, default_value_t = 120)]
    duplicate_window_s: u64,
    /// JetStream stream replicas (3 in a 3-node cluster).
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// How batches go out to JetStream while no other writer is seen: `measured`
    /// takes whichever way has cost less lately; `publishes` suits the server's
    /// default sync, `batch` (atomic batches) `sync_interval: always`.
    #[arg(long, value_name = "measured|publishes|batch", default_value = "measured")]
    nats_chains: fundtrail_store::ChainWay,
    /// Also serve the private donor vault API (`/private/v1/donors`: names, contacts,
    /// erasure; kept in <data>/vault) on this second address. Off by default.
    /// Every request must carry the bearer token of --private-token-file; bind it
    /// to loopback or an internal network too.
    #[arg(long, env = "FUNDTRAIL_PRIVATE_LISTEN")]
    private_listen: Option<SocketAddr>,
    /// The private API's bearer token (its first line, 32 to 1,024 printable
    /// characters): required with --private-listen.
    #[arg(long, value_name = "FILE", env = "FUNDTRAIL_PRIVATE_TOKEN_FILE")]
    private_token_file: Option<PathBuf>,
    /// A witness policy file (C2SP tlog-policy) to pin in the portal's page: the page
    /// then checks each checkpoint's cosignatures against it (without one it says the
    /// ledger is not witnessed).
    #[arg(long, value_name = "FILE", env = "FUNDTRAIL_PORTAL_WITNESS_POLICY")]
    portal_witness_policy: Option<PathBuf>,
    /// A witness that cosigns the ledger's checkpoints (C2SP tlog-witness), as
    /// URL=VKEY: its submission URL and its vkey. Repeat for each witness. With
    /// witnesses, /ledger/checkpoint serves only checkpoints a quorum cosigned.
    #[arg(long = "witness", value_name = "URL=VKEY")]
    witnesses: Vec<String>,
    /// Cosignatures a checkpoint needs before it is served (default: a majority
    /// of the witnesses).
    #[arg(long, value_name = "K", requires = "witnesses")]
    witness_quorum: Option<usize>,
    /// How long one request to a witness may take, in milliseconds.
    #[arg(long, default_value_t = 2_000, value_name = "MS")]
    witness_timeout_ms: u64,
    #[command(flatten)]
    limits: LimitArgs,
}

/// How much load the public listener takes before it sheds (see `docs/load-shedding.md`).
#[derive(Args)]
pub struct LimitArgs {
    /// TCP connections open at once; more wait in the kernel's backlog.
    #[arg(long, default_value_t = fundtrail_http::limits::CONNECTIONS_MAX_DEFAULT, value_parser = limit_value)]
    connections_max: usize,
    /// Submissions (POST /v1/events) in progress at once; more are answered 503 at once.
    #[arg(long, default_value_t = fundtrail_http::limits::SUBMISSIONS_MAX_DEFAULT, value_parser = limit_value)]
    submissions_max: usize,
    /// Live feeds (GET /v1/stream) open at once; more are answered 503.
    #[arg(long, default_value_t = fundtrail_http::STREAMS_MAX, value_parser = limit_value)]
    streams_max: usize,
    /// Envelopes failing authentication one connection may send in a row, then it is
    /// answered 429 and closed...
    #[arg(long, default_value_t = fundtrail_http::limits::AUTH_FAILURES_BURST_DEFAULT, value_parser = limit_u32)]
    auth_failures_burst: u32,
    /// ... until it has earned a token back, at this many per second.
    #[arg(long, default_value_t = fundtrail_http::limits::AUTH_FAILURES_PER_S_DEFAULT, value_parser = limit_u32)]
    auth_failures_per_s: u32,
    /// Envelopes failing authentication one client address may send in a row on
    /// connections that have not yet sent one that verified (raise it behind a proxy)...
    #[arg(long, default_value_t = fundtrail_http::limits::ADDRESS_FAILURES_BURST_DEFAULT, value_parser = limit_u32)]
    address_failures_burst: u32,
    /// ... and then per second.
    #[arg(long, default_value_t = fundtrail_http::limits::ADDRESS_FAILURES_PER_S_DEFAULT, value_parser = limit_u32)]
    address_failures_per_s: u32,
}

impl LimitArgs {
    fn limits(&self) -> fundtrail_http::Limits {
        fundtrail_http::Limits {
            connections_max: self.connections_max,
            submissions_max: self.submissions_max,
            streams_max: self.streams_max,
            auth_failures_burst: self.auth_failures_burst,
            auth_failures_per_s: self.auth_failures_per_s,
            address_failures_burst: self.address_failures_burst,
            address_failures_per_s: self.address_failures_per_s,
        }
    }
}

fn limit_value(text: &str) -> Result<usize, String> {
    let max = fundtrail_http::limits::LIMIT_MAX;
    match text.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("must be a whole number from 1 to {max}")),
    }
}

fn limit_u32(text: &str) -> Result<u32, String> {
    limit_value(text).map(|n| u32::try_from(n).expect("LIMIT_MAX fits in u32"))
}

/// How `serve` authenticates to NATS: at most one way. Secrets come from files
/// or the environment, never from the command line (which `ps` shows).
#[derive(Args, Default)]
pub struct NatsAuthArgs {
    /// A NATS `.creds` file (user JWT and nkey seed).
    #[arg(long, value_name = "FILE", env = "FUNDTRAIL_NATS_CREDS")]
    nats_creds: Option<PathBuf>,
    /// A file holding an nkey seed (`SU…`).
    #[arg(long, value_name = "FILE", env = "FUNDTRAIL_NATS_NKEY_FILE")]
    nats_nkey_file: Option<PathBuf>,
    /// NATS user; its password from --nats-password-file or FUNDTRAIL_NATS_PASSWORD.
    #[arg(long, value_name = "USER", env = "FUNDTRAIL_NATS_USER")]
    nats_user: Option<String>,
    /// A file holding the NATS user's password.
    #[arg(long, value_name = "FILE", env = "FUNDTRAIL_NATS_PASSWORD_FILE", requires = "nats_user")]
    nats_password_file: Option<PathBuf>,
    /// A file holding a NATS token (or set FUNDTRAIL_NATS_TOKEN).
    #[arg(long, value_name = "FILE", env = "FUNDTRAIL_NATS_TOKEN_FILE")]
    nats_token_file: Option<PathBuf>,
    /// CA certificates (PEM) to trust for NATS over TLS; TLS is then required.
    #[arg(long, value_name = "FILE", env = "FUNDTRAIL_NATS_TLS_CA")]
    nats_tls_ca: Option<PathBuf>,
}

/// A secret from a file (see [`fundtrail_store::Secret::from_file`]).
pub fn read_secret_file(path: &Path, what: &str) -> Result<fundtrail_store::Secret> {
    fundtrail_store::Secret::from_file(path, what).map_err(anyhow::Error::msg)
}

impl NatsAuthArgs {
    /// The one way to authenticate that the flags and environment name.
    fn auth(&self) -> Result<fundtrail_store::NatsAuth> {
        use fundtrail_store::{NatsAuth, Secret};
        let token = match &self.nats_token_file {
            Some(path) => Some(read_secret_file(path, "NATS token")?),
            None => Secret::from_env("FUNDTRAIL_NATS_TOKEN"),
        };
        let mut ways = Vec::new();
        if let Some(path) = &self.nats_creds {
            ways.push(NatsAuth::CredsFile(path.clone()));
        }
        if let Some(path) = &self.nats_nkey_file {
            ways.push(NatsAuth::NkeySeed(read_secret_file(path, "NATS nkey seed")?));
        }
        if let Some(user) = &self.nats_user {
            let password = match &self.nats_password_file {
                Some(path) => read_secret_file(path, "NATS password")?,
                None => Secret::from_env("FUNDTRAIL_NATS_PASSWORD").with_context(|| {
                    format!("--nats-user {user} needs a password: --nats-password-file or FUNDTRAIL_NATS_PASSWORD")
                })?,
            };
            ways.push(NatsAuth::UserPassword { user: user.clone(), password });
        }
        if let Some(token) = token {
            ways.push(NatsAuth::Token(token));
        }
        NatsAuth::one_of(ways).map_err(anyhow::Error::msg)
    }

    /// The connection options for `servers` (a comma-separated list).
    pub fn connect(&self, servers: &str) -> Result<fundtrail_store::NatsConnect> {
        let servers = fundtrail_store::nats_connect::parse_servers(servers).context("--nats")?;
        if let Some(ca) = &self.nats_tls_ca {
            if !ca.is_file() {
                bail!("--nats-tls-ca {} is not a file", ca.display());
            }
        }
        Ok(fundtrail_store::NatsConnect { servers, auth: self.auth()?, tls_ca: self.nats_tls_ca.clone() })
    }
}

#[derive(Args)]
pub struct RebuildArgs {
    /// The data directory of a stopped server.
    #[arg(long, default_value = "fundtrail-data")]
    data: PathBuf,
    /// Projections to drop (all when none is named): donations, donors,
    /// events, ledger. (Funds, proposals, keys and disclosures are the
    /// fold's state, rebuilt by every start from the snapshot or the log.)
    #[arg(long = "projection")]
    projections: Vec<String>,
}

#[derive(Subcommand)]
pub enum LedgerCommand {
    /// Write the ledger as static files in the C2SP tlog-tiles layout
    /// (checkpoint, tile/…, tile/entries/…), to serve from any static host.
    Mirror {
        /// The server's ledger base URL, e.g. http://127.0.0.1:8080/ledger
        #[arg(long)]
        from: String,
        /// The directory to write.
        #[arg(long)]
        to: PathBuf,
        /// The log's verifier key (text or file): the checkpoint is verified before anything is written.
        #[arg(long)]
        vkey: String,
        /// Also write the public portal (index.html, app.js, worker.js, style.css) and
        /// the JSON its pages read (api/…), so the directory is a static site.
        #[arg(long)]
        portal: bool,
        /// The server's base URL for the JSON (default: --from without its /ledger suffix).
        #[arg(long, value_name = "URL", requires = "portal")]
        api: Option<String>,
    },
}

pub fn serve(args: ServeArgs) -> Result<()> {
    init_tracing();
    // A panic is a broken invariant: end the whole process, so that the supervisor
    // restarts it (a restart replays the log: nothing acknowledged is lost), instead of
    // leaving one task dead behind a listener that still answers.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        eprintln!("fundtrail serve: a task panicked; stopping the process");
        std::process::abort();
    }));
    let runtime = tokio::runtime::Runtime::new()?;
    // The private listener authenticates or does not start (checked before
    // anything else starts).
    let private_token = match (&args.private_listen, &args.private_token_file) {
        (Some(_), Some(path)) => {
            let secret = read_secret_file(path, "private API token")?;
            Some(fundtrail_http::vault::BearerToken::new(secret.expose()).map_err(anyhow::Error::msg)?)
        }
        (Some(addr), None) => bail!(
            "--private-listen {addr} needs --private-token-file: the donor vault API is never served without authentication"
        ),
        (None, _) => None,
    };
    let servers = args.nats.clone().or_else(|| std::env::var("FUNDTRAIL_NATS").ok().filter(|v| !v.is_empty()));
    let nats = servers.as_deref().map(|list| args.nats_auth.connect(list)).transpose()?;
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("cannot create the data directory {}", args.data.display()))?;
    let log_key = fundtrail_client::key_file::load_or_create(
        &args.log_key.clone().unwrap_or_else(|| args.data.join(LOG_KEY_FILE)),
    )?;
    let witnesses = Witnesses::parse(&args.witnesses, args.witness_quorum, args.witness_timeout_ms)?;
    let witnessed = witnesses.as_ref().map(Witnesses::describe);
    runtime.block_on(async {
        let options = ServerOptions {
            listen: args.listen,
            data_dir: args.data.clone(),
            nats: nats.clone(),
            log_key,
            host_key: args.host_key.clone(),
            clock: Arc::new(SystemClock),
            backdate_max: chrono::Duration::days(args.backdate_days.clamp(0, 3_650)),
            witnesses,
        };
        let tuning = Tuning {
            origin: args.origin.clone(),
            checkpoint_entries: args.checkpoint_entries.max(1),
            checkpoint_interval: Duration::from_millis(args.checkpoint_interval_ms.max(10)),
            settings: StreamSettings {
                duplicate_window: Duration::from_secs(args.duplicate_window_s.max(1)),
                replicas: args.replicas.max(1),
                chains: args.nats_chains,
            },
            limits: args.limits.limits(),
        };
        let mut server = tokio::select! {
            server = fundtrail_server::start(options, tuning) => server?,
            _ = shutdown_signal() => {
                println!("stopped before the service started");
                return Ok(());
            }
        };
        if let Some(path) = &args.portal_witness_policy {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("--portal-witness-policy {}", path.display()))?;
            server.pin_witness_policy(&text).with_context(|| format!("--portal-witness-policy {}", path.display()))?;
        }
        let store = match &nats {
            Some(connect) => format!("NATS JetStream at {}", connect.describe()),
            None => format!("embedded log in {}", args.data.join("log").display()),
        };
        println!("FundTrail serving on {} ({store})", server.url);
        println!("ledger vkey: {}", server.vkey);
        if let Some(line) = &witnessed {
            println!("witnesses: {line}: /ledger/checkpoint serves what a quorum cosigned");
        }
        tracing::info!(url = %server.url, "serving");
        if let (Some(addr), Some(token)) = (args.private_listen, private_token) {
            let url = server.start_private_vault(addr, &args.data, token).await?;
            if !addr.ip().is_loopback() {
                eprintln!(
                    "warning: the private donor vault API listens on {url}: make sure only an internal network reaches it"
                );
            }
            println!(
                "private donor vault API on {url}/private/v1/donors (vault in {})",
                args.data.join(fundtrail_service::vault::VAULT_DIR).display()
            );
        }
        shutdown_signal().await;
        println!("shutting down");
        server.stop().await
    })
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

pub fn rebuild(args: RebuildArgs) -> Result<()> {
    let names = fundtrail_server::drop_projections(&args.data, args.projections)?;
    println!("dropped {}: the next `fundtrail serve` rebuilds them from the log", names.join(", "));
    Ok(())
}

pub fn ledger(cmd: LedgerCommand) -> Result<()> {
    let LedgerCommand::Mirror { from, to, vkey, portal, api } = cmd;
    let verifier = crate::audit_cmd::log_verifier(&vkey)?;
    let vkey = verifier.vkey();
    let source = fundtrail_audit::source::open_source(&from)?;
    let mirror = Mirror::copy(source.as_ref(), &verifier, &to)?;
    if portal {
        let api = api.unwrap_or_else(|| from.trim_end_matches('/').trim_end_matches("/ledger").to_string());
        let client = fundtrail_client::http::Client::new(&api)?;
        let files =
            fundtrail_client::static_api::fetch(&client, &mut |path, bytes| Ok(write_atomic(&to, path, bytes)?))?;
        for (path, bytes) in fundtrail_http::portal::static_site(&verifier.vkey()) {
            write_atomic(&to, path, &bytes)?;
        }
        println!("wrote the portal and {files} JSON files of {api}/v1 into {}", to.display());
    }
    let tiles = mirror.tiles;
    let checkpoint = mirror.finish()?;
    println!("mirrored {} entries ({tiles} tiles and bundles) into {}", checkpoint.size, to.display());
    println!("verify it with: fundtrail verify --ledger {} --vkey '{vkey}'", to.display());
    Ok(())
}
