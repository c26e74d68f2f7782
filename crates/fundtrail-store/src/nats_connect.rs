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

/// Largest file a secret is read from (a password, token or nkey seed is far smaller).
pub const SECRET_FILE_BYTES_MAX: u64 = 4096;

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The secret in a file: its first line, trimmed; refused when the file is empty or
    /// over [`SECRET_FILE_BYTES_MAX`]. An error names `what` and the file, never what
    /// the file holds.
    pub fn from_file(path: &std::path::Path, what: &str) -> Result<Secret, String> {
        let unreadable = |e: std::io::Error| format!("cannot read the {what} file {}: {}", path.display(), e.kind());
        let meta = std::fs::metadata(path).map_err(unreadable)?;
        if meta.len() > SECRET_FILE_BYTES_MAX {
            return Err(format!("the {what} file {} is over {SECRET_FILE_BYTES_MAX} bytes", path.display()));
        }
        let text = std::fs::read_to_string(path).map_err(unreadable)?;
        let value = text.lines().next().unwrap_or("").trim().to_owned();
        if value.is_empty() {
            return Err(format!("the {what} file {} is empty", path.display()));
        }
        Ok(Secret(value))
    }

    /// The secret in an environment variable, if it is set and not blank.
    pub fn from_env(name: &str) -> Option<Secret> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty()).map(|v| Secret(v.trim().to_owned()))
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
    /// The one way to authenticate among those given ([`NatsAuth::None`] for none);
    /// more than one is refused, naming each without its secret.
    pub fn one_of(mut ways: Vec<NatsAuth>) -> Result<NatsAuth, String> {
        if ways.len() > 1 {
            let named: Vec<String> = ways.iter().map(NatsAuth::describe).collect();
            return Err(format!(
                "more than one way to authenticate to NATS is given ({}): choose one",
                named.join(", ")
            ));
        }
        Ok(ways.pop().unwrap_or(NatsAuth::None))
    }

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
    fn a_secret_file_gives_its_first_line_and_errors_never_repeat_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, "  s3cret-value  \nsecond line\n").unwrap();
        assert_eq!(Secret::from_file(&path, "NATS password").unwrap().expose(), "s3cret-value");
        std::fs::write(&path, "\n").unwrap();
        let empty = Secret::from_file(&path, "NATS password").unwrap_err();
        assert!(empty.contains("NATS password file") && empty.contains("is empty"), "{empty}");
        std::fs::write(&path, "s3cret-value".repeat(400)).unwrap();
        let large = Secret::from_file(&path, "NATS password").unwrap_err();
        assert!(large.contains("over 4096 bytes") && !large.contains("s3cret"), "{large}");
        let missing = Secret::from_file(&dir.path().join("none"), "NATS token").unwrap_err();
        assert!(missing.starts_with("cannot read the NATS token file"), "{missing}");
    }

    #[test]
    fn one_way_to_authenticate_at_most() {
        assert!(matches!(NatsAuth::one_of(vec![]), Ok(NatsAuth::None)));
        let token = NatsAuth::Token(Secret::new("t0ken".into()));
        assert!(matches!(NatsAuth::one_of(vec![token.clone()]), Ok(NatsAuth::Token(_))));
        let user = NatsAuth::UserPassword { user: "fundtrail".into(), password: Secret::new("pw".into()) };
        let two = NatsAuth::one_of(vec![user, token]).unwrap_err();
        assert!(two.contains("user fundtrail, a token") && !two.contains("t0ken"), "{two}");
    }

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
