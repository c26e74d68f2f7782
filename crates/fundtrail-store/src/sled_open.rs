//! Opening a sled database that this process may have just closed.
//!
//! sled takes an exclusive lock on its `db` file and lets it go from its flusher
//! thread a moment after the last handle is dropped. A close-then-open in one process
//! (a restart inside a benchmark or a test, the donor vault's rewrite swap) can find
//! the lock still taken and fail with "could not acquire lock". [`open_sled`] waits
//! for it, at most [`LOCK_WAIT_MAX`]; a lock another process holds is still refused,
//! after the wait.

use std::time::{Duration, Instant};

/// How long [`open_sled`] waits for a lock to be let go.
pub const LOCK_WAIT_MAX: Duration = Duration::from_secs(5);
/// Pause between tries.
const LOCK_RETRY_PAUSE: Duration = Duration::from_millis(20);

/// `config.open()`, waiting while the database's lock is held (see the module doc).
pub fn open_sled(config: &sled::Config) -> sled::Result<sled::Db> {
    let deadline = Instant::now() + LOCK_WAIT_MAX;
    loop {
        match config.open() {
            Err(sled::Error::Io(e)) if is_lock_held(&e) && Instant::now() < deadline => {
                std::thread::sleep(LOCK_RETRY_PAUSE);
            }
            other => return other,
        }
    }
}

fn is_lock_held(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("could not acquire lock")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_closed_by_this_process_opens_again_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let config = sled::Config::new().path(dir.path().join("db"));
        for round in 0..20u8 {
            let db = open_sled(&config).expect("the lock of the previous round is let go");
            db.insert([round], vec![round]).unwrap();
            db.flush().unwrap();
            drop(db);
        }
        let db = open_sled(&config).unwrap();
        assert_eq!(db.len(), 20);
    }

    #[test]
    fn a_lock_held_by_an_open_database_is_refused_after_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let config = sled::Config::new().path(dir.path().join("db"));
        let _open = open_sled(&config).unwrap();
        let started = Instant::now();
        let refused = open_sled(&config);
        assert!(refused.is_err(), "two handles on one database");
        assert!(started.elapsed() >= LOCK_WAIT_MAX);
    }
}
