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
