//! Opening envelopes on every core, with exactly the result of opening them one by one.
//!
//! The costly part of a replay is [`fundtrail_envelope::open`]: Ed25519 strict
//! verification, strict JSON, the schema. It depends on the fold in one way only: the
//! key it resolves for the signer. So a window of envelopes is opened ahead, in
//! parallel, against a snapshot of the fold (an O(1) clone), remembering the key each
//! was opened with; then each is applied in order. An envelope opened ahead is used
//! only when, at its turn, the fold resolves the same signer to the same key and (in
//! stream mode) the subject is the event's own: then `Fold::apply` would have opened
//! these same bytes with that same key, which is deterministic, to the same event. Every
//! other envelope — one that failed to open ahead (a key enrolled inside the window, a
//! bad signature, bad JSON), a genesis event (opened with the key its payload names,
//! not one the fold resolved), a subject that differs — goes through `Fold::apply` at
//! its turn, which accepts it or refuses it with its own error. The verifier therefore
//! accepts exactly what the sequential replay accepts, and fails at the same entry with
//! the same cause.

use std::cell::Cell;
use std::num::NonZeroUsize;

use ed25519_dalek::VerifyingKey;
use fundtrail_domain::KeyId;
use fundtrail_envelope::{open, EnvelopeError, Fold, VerifiedEvent};
use rayon::prelude::*;

use crate::verify::{Replay, VerifyFailure};

/// Entries read ahead and opened in parallel at a time: enough work per window that
/// starting it costs nothing (a window is tens of milliseconds of signatures), few
/// enough that a key enrolled in one window is known to the next.
pub const WINDOW_ENTRIES_MAX: usize = 2_048;

/// Most envelopes a worker opens as one piece of a window (a millisecond or so): rayon
/// would otherwise hand each of two workers a quarter of the window, and one would
/// idle while the other finished its last quarter alone.
pub const PIECE_ENTRIES_MAX: usize = 16;

/// How many threads open envelopes. One opens them on the calling thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threads(NonZeroUsize);

impl Threads {
    /// One per core (`std::thread::available_parallelism`), or one if unknown.
    pub fn available() -> Threads {
        Threads(std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN))
    }

    /// `n` threads; `None` for zero.
    pub fn new(n: usize) -> Option<Threads> {
        NonZeroUsize::new(n).map(Threads)
    }

    pub fn get(self) -> usize {
        self.0.get()
    }
}

impl Default for Threads {
    fn default() -> Threads {
        Threads::available()
    }
}

/// What opening an envelope ahead of its turn gave.
pub(crate) enum Ahead {
    /// Opened, with the key the snapshot resolved for its signer (boxed: most are).
    Opened(Box<Opened>),
    /// The snapshot does not know the signer's key: open it again once the fold does.
    Waiting(KeyId),
    /// Anything else (nothing to open, a bad signature or JSON, a genesis event opened
    /// with the key it names): `Fold::apply` decides at its turn.
    Fold,
}

pub(crate) struct Opened {
    verified: VerifiedEvent,
    key: VerifyingKey,
    /// The event's own subject (current version), when the caller will compare one.
    subject: Option<String>,
}

/// Opens `envelope` against `snapshot`'s keys.
pub(crate) fn open_ahead(snapshot: &Fold, envelope: Option<&[u8]>, with_subject: bool) -> Ahead {
    let Some(envelope) = envelope else { return Ahead::Fold };
    let resolved = Cell::new(None);
    let opened = open(envelope, |id| {
        let key = snapshot.key(id);
        resolved.set(key);
        key
    });
    match (opened, resolved.get()) {
        (Ok(verified), Some(key)) => {
            let subject = with_subject.then(|| verified.event.subject());
            Ahead::Opened(Box::new(Opened { verified, key, subject }))
        }
        (Err(EnvelopeError::UnknownKey(id)), _) => Ahead::Waiting(id),
        _ => Ahead::Fold,
    }
}

impl Ahead {
    /// The event, if `Fold::apply(seq, subject, envelope)` on `fold` now would open
    /// the envelope to exactly it and pass the subject check; `None` sends the
    /// envelope through `Fold::apply`.
    pub(crate) fn usable(self, fold: &Fold, subject: Option<&str>) -> Option<VerifiedEvent> {
        let Ahead::Opened(opened) = self else { return None };
        if fold.key(&opened.verified.signer) != Some(opened.key) {
            return None;
        }
        let Opened { verified, subject: own, .. } = *opened;
        match (subject, own) {
            (None, _) => Some(verified),
            // A message of an older subject version: its own subject in that version.
            (Some(given), Some(own)) if given == own || verified.event.subject_like(given) == given => Some(verified),
            (Some(_), _) => None,
        }
    }
}

/// Which waiting envelopes to open again.
#[derive(Clone, Copy)]
pub(crate) enum Reopen<'a> {
    /// Those whose key the fold knows now.
    Known,
    /// Those waiting for this key, just enrolled.
    Key(&'a KeyId),
}

/// Where envelopes are opened: a pool of worker threads, or the calling thread.
pub(crate) struct Openers {
    pool: Option<rayon::ThreadPool>,
}

impl Openers {
    pub(crate) fn new(threads: Threads) -> Result<Openers, rayon::ThreadPoolBuildError> {
        let pool = match threads.get() {
            1 => None,
            n => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("fundtrail-verify-{i}"))
                    .build()?,
            ),
        };
        Ok(Openers { pool })
    }

    /// Opens every envelope ahead against `snapshot`, in order.
    pub(crate) fn open_all(&self, snapshot: &Fold, envelopes: &[Option<&[u8]>], with_subject: bool) -> Vec<Ahead> {
        let one = |envelope: &Option<&[u8]>| open_ahead(snapshot, *envelope, with_subject);
        match &self.pool {
            Some(pool) => pool.install(|| envelopes.par_iter().with_max_len(PIECE_ENTRIES_MAX).map(one).collect()),
            None => envelopes.iter().map(one).collect(),
        }
    }

    /// Opens again, against `fold`, the envelopes waiting for a key that `which` picks.
    pub(crate) fn reopen(
        &self,
        fold: &Fold,
        envelopes: &[Option<&[u8]>],
        aheads: &mut [Ahead],
        which: Reopen<'_>,
        with_subject: bool,
    ) {
        assert_eq!(envelopes.len(), aheads.len());
        let one = |(ahead, envelope): (&mut Ahead, &Option<&[u8]>)| {
            let Ahead::Waiting(key) = ahead else { return };
            let ready = match which {
                Reopen::Known => fold.key(key).is_some(),
                Reopen::Key(enrolled) => key == enrolled,
            };
            if ready {
                *ahead = open_ahead(fold, *envelope, with_subject);
            }
        };
        match &self.pool {
            Some(pool) => pool.install(|| {
                aheads.par_iter_mut().zip(envelopes.par_iter()).with_max_len(PIECE_ENTRIES_MAX).for_each(one)
            }),
            None => aheads.iter_mut().zip(envelopes.iter()).for_each(one),
        }
    }

    /// Runs `open` (the next window) on the workers while `apply` (the current one)
    /// runs on the calling thread; returns both results. With one thread, `open` runs
    /// first, then `apply`, both here.
    pub(crate) fn overlap<A, O>(&self, open: impl FnOnce() -> O + Send, apply: impl FnOnce() -> A) -> (A, O)
    where
        O: Send,
    {
        match &self.pool {
            Some(pool) => {
                let mut opened = None;
                let applied = pool.in_place_scope(|scope| {
                    scope.spawn(|_| opened = Some(open()));
                    apply()
                });
                (applied, opened.expect("the scope waited for the opening"))
            }
            None => {
                let opened = open();
                (apply(), opened)
            }
        }
    }
}

/// Applies a window of envelopes in order: first those waiting for a key the fold
/// knows now are opened again (the window was opened ahead against an older fold);
/// `push(replay, i, ahead)` folds envelope `i` and names the key it enrolled, if any,
/// and the envelopes further on that waited for that key are opened again before the
/// next one is folded.
pub(crate) fn apply_window(
    openers: &Openers,
    replay: &mut Replay,
    envelopes: &[Option<&[u8]>],
    mut aheads: Vec<Ahead>,
    with_subject: bool,
    mut push: impl FnMut(&mut Replay, usize, Ahead) -> Result<Option<KeyId>, VerifyFailure>,
) -> Result<(), VerifyFailure> {
    assert_eq!(envelopes.len(), aheads.len());
    if aheads.iter().any(|a| matches!(a, Ahead::Waiting(_))) {
        openers.reopen(&replay.fold, envelopes, &mut aheads, Reopen::Known, with_subject);
    }
    for i in 0..aheads.len() {
        let ahead = std::mem::replace(&mut aheads[i], Ahead::Fold);
        if let Some(key) = push(replay, i, ahead)? {
            let rest = i + 1..aheads.len();
            if aheads[rest.clone()].iter().any(|a| matches!(a, Ahead::Waiting(k) if *k == key)) {
                let (envelopes, aheads) = (&envelopes[rest.clone()], &mut aheads[rest]);
                openers.reopen(&replay.fold, envelopes, aheads, Reopen::Key(&key), with_subject);
            }
        }
    }
    Ok(())
}
