//! Memory of the fold per donation: a measurement, not a test (`docs/performance.md`).
//!
//! ```sh
//! cargo build --workspace --examples && target/debug/examples/fold_memory 100000
//! ```
//!
//! Signs a fund's year of N donations ([`LedgerBuilder::realistic`]), then folds the
//! envelopes through the real [`Fold`] (open, verify, evolve) and reports the bytes
//! the fold holds per donation: heap bytes requested (counted by this binary's
//! allocator, so without the allocator's own overhead). It folds them twice: first
//! cloning the fold every few events, as the service publishes its state to readers
//! (a change then copies a chunk another version shares), then without.
//! It then drops the state's per-donation indexes one by one and reports what each
//! freed. A debug build is enough: the figures are bytes, not time.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use fundtrail_audit::testing::LedgerBuilder;
use fundtrail_envelope::Fold;

/// Counts the bytes currently allocated through it.
struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; only a counter is kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Most donations one run signs (they are all held in memory before folding).
const DONATIONS_MAX: u32 = 1_000_000;

/// How often the first fold is cloned, as the service publishes its state.
const PUBLISHED_EVERY: usize = 16;

fn allocated() -> usize {
    ALLOCATED.load(Ordering::Relaxed)
}

/// Folds `envelopes` into a new fold, cloning it every `publish_every` events
/// (the last clone dropped at the end); answers the fold and the heap it holds.
fn fold_all(envelopes: &[Vec<u8>], publish_every: Option<usize>) -> (Fold, usize) {
    let heap_before = allocated();
    let mut fold = Fold::new();
    let mut published = None;
    for (i, envelope) in envelopes.iter().enumerate() {
        fold.apply(i as u64 + 1, None, envelope).expect("the builder's history folds");
        if publish_every.is_some_and(|every| i % every == 0) {
            published = Some(fold.clone());
        }
    }
    drop(published);
    (fold, allocated() - heap_before)
}

fn main() {
    let donations: u32 = match std::env::args().nth(1).map(|a| a.parse::<u32>()) {
        None => 100_000,
        Some(Ok(n)) if (1..=DONATIONS_MAX).contains(&n) => n,
        Some(_) => {
            eprintln!("usage: fold_memory [DONATIONS, 1..={DONATIONS_MAX}]");
            std::process::exit(2);
        }
    };
    let envelopes = LedgerBuilder::realistic(donations).envelopes;
    let per = |bytes: usize| bytes as f64 / f64::from(donations);
    println!("fold of {donations} donations ({} messages)", envelopes.len());

    // As the service folds: the state published to readers every few events,
    // so that the fold changes chunks another version still shares.
    let (folded_published, heap) = fold_all(&envelopes, Some(PUBLISHED_EVERY));
    println!(
        "  heap held, published every {PUBLISHED_EVERY} events: {:>12} bytes, {:>7.1} per donation",
        heap,
        per(heap)
    );
    drop(folded_published);

    let (mut fold, heap) = fold_all(&envelopes, None);
    println!("  heap held by the fold:  {:>12} bytes, {:>7.1} per donation", heap, per(heap));
    drop(envelopes);

    // What the per-donation parts hold, dropped one after the other (ids are shared
    // between maps, so a part's figure is what dropping it freed at that point).
    let mut freed = |what: &str, drop_it: &mut dyn FnMut(&mut Fold)| {
        let before = allocated();
        drop_it(&mut fold);
        let bytes = before.saturating_sub(allocated());
        println!("  freed by {what:<34} {bytes:>12} bytes, {:>7.1} per donation", per(bytes));
    };
    freed("the funds' receipt numbers", &mut |f| {
        let ids: Vec<_> = f.state.funds.keys().cloned().collect();
        ids.iter().for_each(|id| f.state.funds[id].receipt_numbers = Default::default())
    });
    freed("the funds' donations", &mut |f| {
        let ids: Vec<_> = f.state.funds.keys().cloned().collect();
        ids.iter().for_each(|id| f.state.funds[id].donations = Default::default())
    });
    freed("the rest of the fold (ids, keys…)", &mut |f| *f = Fold::new());
}
