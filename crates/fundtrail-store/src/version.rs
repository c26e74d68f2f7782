//! The NATS server version check: FundTrail refuses servers older than
//! [`SERVER_VERSION_MIN`] (older ones sync to disk only every 60 s by default, lack the
//! wildcard expected-sequence check and atomic batches).

/// Oldest nats-server FundTrail accepts.
pub const SERVER_VERSION_MIN: (u64, u64, u64) = (2, 12, 0);

/// Parses `major.minor.patch` from a server's version string (`2.15.1`, `v2.12.0`,
/// `2.12.0-RC.1`, `2.14.0+build`). A pre-release or build suffix is ignored: a 2.12.0
/// release candidate counts as 2.12.0.
pub fn parse(version: &str) -> Option<(u64, u64, u64)> {
    let version = version.trim().trim_start_matches('v');
    let core = version.split(['-', '+']).next()?;
    let mut parts = core.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = match parts.next() {
        Some(p) => p.parse().ok()?,
        None => 0,
    };
    if parts.next().is_some() {
        return None;
    }
    Some((major, minor, patch))
}

/// Checks a server's version string against [`SERVER_VERSION_MIN`]; the error names
/// both versions.
pub fn check(version: &str) -> Result<(), String> {
    let (a, b, c) = SERVER_VERSION_MIN;
    match parse(version) {
        Some(found) if found >= SERVER_VERSION_MIN => Ok(()),
        Some(_) => Err(format!(
            "nats-server {version} is too old: FundTrail needs {a}.{b}.{c} or later \
             (atomic batches, wildcard expected-sequence checks, sync_interval)"
        )),
        None => Err(format!("cannot read the nats-server version {version:?}; FundTrail needs {a}.{b}.{c} or later")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_release_and_prerelease_versions() {
        assert_eq!(parse("2.15.1"), Some((2, 15, 1)));
        assert_eq!(parse("v2.12.0"), Some((2, 12, 0)));
        assert_eq!(parse("2.12.0-RC.1"), Some((2, 12, 0)));
        assert_eq!(parse("2.14.0+abc"), Some((2, 14, 0)));
        assert_eq!(parse("2.12"), Some((2, 12, 0)));
        assert_eq!(parse("garbage"), None);
        assert_eq!(parse("2.x.1"), None);
        assert_eq!(parse("2.1.2.3"), None);
    }

    #[test]
    fn accepts_2_12_and_later() {
        assert!(check("2.12.0").is_ok());
        assert!(check("2.15.1").is_ok());
        assert!(check("3.0.0").is_ok());
        assert!(check("2.100.0").is_ok());
    }

    #[test]
    fn refuses_older_servers_naming_both_versions() {
        for old in ["2.11.9", "2.10.22", "2.9.21", "1.4.1"] {
            let message = check(old).unwrap_err();
            assert!(message.contains(old), "{message}");
            assert!(message.contains("2.12.0"), "{message}");
        }
        assert!(check("").is_err());
    }
}
