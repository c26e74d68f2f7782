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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use ed25519_dalek::VerifyingKey;
use fundtrail_domain::KeyId;
use fundtrail_envelope::{open, EnvelopeError, Fold, VerifiedEvent};

use crate::verify::{Replay, VerifyFailure};

/// Entries read ahead and opened in parallel at a time: enough work per window that
/// starting it costs nothing (a window is tens of milliseconds of signatures), few
/// enough that a key enrolled in one window is known to the next.
pub const WINDOW_ENTRIES_MAX: usize = 2_048;

/// Most envelopes a thread opens as one piece of a window (a millisecond or so), so
/// that the threads finish a window together: with large pieces, one would idle while
/// another finished its last piece alone.
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

/// Where envelopes are opened: the calling thread and, with more than one thread,
/// `threads − 1` workers. They take pieces of at most [`PIECE_ENTRIES_MAX`] envelopes
/// from one queue; the calling thread first does its own work (applying the window
/// before), then takes pieces too. So `threads` threads run at once, never more: a
/// worker per core besides a busy calling thread would make three threads share two
/// cores.
pub(crate) struct Openers {
    /// The workers besides the calling thread; `None` with one thread.
    pool: Option<rayon::ThreadPool>,
    /// True while [`Openers::open_all_while`] runs: its workers are busy with the
    /// window ahead, so a reopen that its `apply` asks for runs on the calling thread.
    overlapping: AtomicBool,
}

impl Openers {
    pub(crate) fn new(threads: Threads) -> Result<Openers, rayon::ThreadPoolBuildError> {
        let pool = match threads.get() {
            1 => None,
            n => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n - 1)
                    .thread_name(|i| format!("fundtrail-verify-{i}"))
                    .build()?,
            ),
        };
        Ok(Openers { pool, overlapping: AtomicBool::new(false) })
    }

    /// Opens every envelope ahead against `snapshot`, in order, while `apply` (the
    /// window before) runs on the calling thread, which then opens too; returns both
    /// results. With one thread, opens first, then applies.
    pub(crate) fn open_all_while<A>(
        &self,
        snapshot: &Fold,
        envelopes: &[Option<&[u8]>],
        with_subject: bool,
        apply: impl FnOnce() -> A,
    ) -> (A, Vec<Ahead>) {
        let mut aheads: Vec<Ahead> = envelopes.iter().map(|_| Ahead::Fold).collect();
        let one = |i: usize, ahead: &mut Ahead| *ahead = open_ahead(snapshot, envelopes[i], with_subject);
        let was = self.overlapping.swap(true, Ordering::SeqCst);
        assert!(!was, "windows are opened one at a time");
        let applied = self.in_pieces(&mut aheads, one, apply);
        self.overlapping.store(false, Ordering::SeqCst);
        (applied, aheads)
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
        let one = |i: usize, ahead: &mut Ahead| {
            let Ahead::Waiting(key) = ahead else { return };
            let ready = match which {
                Reopen::Known => fold.key(key).is_some(),
                Reopen::Key(enrolled) => key == enrolled,
            };
            if ready {
                *ahead = open_ahead(fold, envelopes[i], with_subject);
            }
        };
        if self.overlapping.load(Ordering::SeqCst) {
            aheads.iter_mut().enumerate().for_each(|(i, ahead)| one(i, ahead));
        } else {
            self.in_pieces(aheads, one, || ());
        }
    }

    /// Runs `one(i, &mut items[i])` for every item, in pieces, on the workers and —
    /// after `here_first`, whose result it returns — on the calling thread. With one
    /// thread: every item first, then `here_first`.
    fn in_pieces<T: Send, A>(
        &self,
        items: &mut [T],
        one: impl Fn(usize, &mut T) + Sync,
        here_first: impl FnOnce() -> A,
    ) -> A {
        let Some(pool) = &self.pool else {
            items.iter_mut().enumerate().for_each(|(i, item)| one(i, item));
            return here_first();
        };
        let queue = Mutex::new(items.chunks_mut(PIECE_ENTRIES_MAX).enumerate());
        let drain = || loop {
            // The lock is held only to take the next piece, which cannot panic.
            let next = queue.lock().expect("the piece queue is never poisoned").next();
            let Some((n, piece)) = next else { return };
            for (k, item) in piece.iter_mut().enumerate() {
                one(n * PIECE_ENTRIES_MAX + k, item);
            }
        };
        pool.in_place_scope(|scope| {
            for _ in 0..pool.current_num_threads() {
                scope.spawn(|_| drain());
            }
            let result = here_first();
            drain();
            result
        })
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
