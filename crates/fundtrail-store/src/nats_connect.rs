//! How to reach NATS: the servers (any of them; the client fails over between
//! them and the ones the cluster announces), the credentials and TLS.
//!
//! Secrets (a password, a token) are held as [`Secret`], whose `Debug` and
//! `Display` print `[redacted]`; server URLs may not carry credentials (they are
//! refused with an error that does not repeat them), so no URL, error or log
//! line of this crate can hold one.

use std::fmt;
use std::path::PathBuf;

/// Most servers in one `--nats` list.
pub const SERVERS_MAX: usize = 16;

/// A secret value: printed as `[redacted]`, never compared or logged.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// How the service authenticates to NATS.
#[derive(Clone, Debug)]
pub enum NatsAuth {
    None,
    /// A `.creds` file (user JWT and nkey seed), as `nsc` writes it.
    CredsFile(PathBuf),
    /// An nkey seed (`SU…`), read from this file.
    NkeySeed(Secret),
    UserPassword {
        user: String,
        password: Secret,
    },
    Token(Secret),
}

impl NatsAuth {
    /// What it is, without any secret: "user fundtrail", "creds file /etc/…".
    pub fn describe(&self) -> String {
        match self {
            NatsAuth::None => "no credentials".into(),
            NatsAuth::CredsFile(path) => format!("creds file {}", path.display()),
            NatsAuth::NkeySeed(_) => "an nkey".into(),
            NatsAuth::UserPassword { user, .. } => format!("user {user}"),
            NatsAuth::Token(_) => "a token".into(),
        }
    }
}

/// Everything needed to connect.
#[derive(Clone, Debug)]
pub struct NatsConnect {
    /// `nats://host:port` or `tls://host:port`, without credentials.
    pub servers: Vec<String>,
    pub auth: NatsAuth,
    /// Trust these CA certificates (PEM) and require TLS.
    pub tls_ca: Option<PathBuf>,
}

/// Why a server list was refused (never repeating a credential).
#[derive(Debug, thiserror::Error)]
pub enum ServersError {
    #[error("no NATS server given")]
    Empty,
    #[error("more than {SERVERS_MAX} NATS servers given")]
    TooMany,
    #[error(
        "NATS server {0} carries credentials in its URL: pass them with --nats-user and \
         FUNDTRAIL_NATS_PASSWORD (or a file), --nats-token-file, --nats-creds or --nats-nkey-file"
    )]
    Credentials(usize),
    #[error("NATS server {index} ({shown}) is not a server address: {reason}")]
    Invalid { index: usize, shown: String, reason: String },
}

impl NatsConnect {
    /// Servers without credentials.
    pub fn plain(servers: &str) -> Result<NatsConnect, ServersError> {
        Ok(NatsConnect { servers: parse_servers(servers)?, auth: NatsAuth::None, tls_ca: None })
    }

    /// The servers, the credentials' kind and TLS, without any secret.
    pub fn describe(&self) -> String {
        let tls = if self.tls_ca.is_some() { ", TLS" } else { "" };
        format!("{} ({}{tls})", self.servers.join(","), self.auth.describe())
    }
}

/// A comma-separated list of servers (`nats://a:4222,nats://b:4222`; a bare
/// `host:port` means `nats://`). Each is checked; one with a user, password or
/// token in it is refused, naming only its position.
pub fn parse_servers(list: &str) -> Result<Vec<String>, ServersError> {
    let mut servers = Vec::new();
    for (i, raw) in list.split(',').map(str::trim).filter(|s| !s.is_empty()).enumerate() {
        let index = i + 1;
        if index > SERVERS_MAX {
            return Err(ServersError::TooMany);
        }
        let url = if raw.contains("://") { raw.to_owned() } else { format!("nats://{raw}") };
        let authority = url.split_once("://").map(|(_, rest)| rest.split('/').next().unwrap_or("")).unwrap_or("");
        if authority.contains('@') {
            return Err(ServersError::Credentials(index));
        }
        let parsed: Result<async_nats::ServerAddr, _> = url.parse();
        match parsed {
            Ok(addr) if addr.has_user_pass() => return Err(ServersError::Credentials(index)),
            Ok(_) => servers.push(url),
            Err(e) => return Err(ServersError::Invalid { index, shown: url, reason: e.to_string() }),
        }
    }
    if servers.is_empty() {
        return Err(ServersError::Empty);
    }
    Ok(servers)
}

/// Why a NATS client could not be made or connected. No variant holds a secret:
/// the servers and the kind of credentials are named, never their value.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot read the NATS creds file {path}: {kind}")]
    CredsFile { path: PathBuf, kind: std::io::ErrorKind },
    #[error("NATS server {server}: {reason}")]
    Server { server: String, reason: String },
    #[error("NATS at {at} refused the credentials: {reason}")]
    Refused { at: String, reason: String },
    #[error("TLS with NATS at {at} failed: {reason}")]
    Tls { at: String, reason: String },
    #[error("cannot connect to NATS at {at}: {reason}")]
    Unreachable { at: String, reason: String },
}

impl ConnectError {
    /// True when waiting cannot help (credentials refused or unreadable, TLS, a bad
    /// address), false when the servers may simply be down.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, ConnectError::Unreachable { .. })
    }
}

/// Connects a client to any of `options.servers` with its credentials and TLS, on
/// top of `base` (timeouts, name). Shared by the event log (`serve`) and the
/// auditor (`verify --nats`), so both accept the same servers and credentials.
pub async fn connect(
    options: &NatsConnect,
    base: async_nats::ConnectOptions,
) -> Result<async_nats::Client, ConnectError> {
    let at = options.describe();
    let mut connect = match &options.auth {
        NatsAuth::None => base,
        NatsAuth::CredsFile(path) => base
            .credentials_file(path)
            .await
            .map_err(|e| ConnectError::CredsFile { path: path.clone(), kind: e.kind() })?,
        NatsAuth::NkeySeed(seed) => base.nkey(seed.expose().to_owned()),
        NatsAuth::UserPassword { user, password } => base.user_and_password(user.clone(), password.expose().to_owned()),
        NatsAuth::Token(token) => base.token(token.expose().to_owned()),
    };
    if let Some(ca) = &options.tls_ca {
        connect = connect.add_root_certificates(ca.clone()).require_tls(true);
    }
    let servers: Vec<async_nats::ServerAddr> = options
        .servers
        .iter()
        .map(|s| s.parse().map_err(|e| ConnectError::Server { server: s.clone(), reason: format!("{e}") }))
        .collect::<Result<_, _>>()?;
    connect.connect(servers).await.map_err(|e| {
        let reason = e.to_string();
        match e.kind() {
            async_nats::ConnectErrorKind::AuthorizationViolation => ConnectError::Refused { at, reason },
            async_nats::ConnectErrorKind::Tls => ConnectError::Tls { at, reason },
            _ => ConnectError::Unreachable { at, reason },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_credentials_are_refused_without_being_repeated() {
        let servers = parse_servers("nats://a:4222, nats://b:4223,c:4224").unwrap();
        assert_eq!(servers, ["nats://a:4222", "nats://b:4223", "nats://c:4224"]);
        let error = parse_servers("nats://a:4222,nats://u:hunter2@b:4222").unwrap_err().to_string();
        assert!(error.contains("server 2") && !error.contains("hunter2"), "{error}");
        assert!(matches!(parse_servers(" , "), Err(ServersError::Empty)));
        let error = parse_servers("nats://a:notaport").unwrap_err().to_string();
        assert!(error.contains("server 1"), "{error}");
    }

    #[test]
    fn secrets_never_print() {
        let auth = NatsAuth::UserPassword { user: "fundtrail".into(), password: Secret::new("s3cr3t-pw".into()) };
        let connect = NatsConnect { servers: vec!["nats://a:4222".into()], auth, tls_ca: None };
        for text in [format!("{connect:?}"), connect.describe(), format!("{}", Secret::new("s3cr3t-pw".into()))] {
            assert!(!text.contains("s3cr3t-pw"), "{text}");
        }
        assert!(connect.describe().contains("user fundtrail"));
    }
}
