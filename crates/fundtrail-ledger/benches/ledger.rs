//! Ledger throughput, each figure beside bare SHA-256 of the same bytes as a baseline.
//!
//! `cargo bench -p fundtrail-ledger` (about half a minute).

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use fundtrail_ledger::{leaf_hash, prove_inclusion, verify_inclusion, Chain, Checkpoint, LogSigner, MemoryHashStore};
use sha2::{Digest, Sha256};
use std::time::Duration;

const ENVELOPE_BYTES: usize = 600;
const BATCH_ENTRIES: usize = 1024;
const TREE_LEAVES: u64 = 1 << 20;

fn envelopes() -> Vec<Vec<u8>> {
    (0..BATCH_ENTRIES)
        .map(|i| {
            let mut e = format!("{{\"payloadType\":\"application/vnd.fundtrail.event+json\",\"n\":{i}}}").into_bytes();
            e.resize(ENVELOPE_BYTES, b'x');
            e
        })
        .collect()
}

fn append(c: &mut Criterion) {
    let envelopes = envelopes();
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements(BATCH_ENTRIES as u64));
    group.bench_function("chain+tree, 1024 entries of 600 B", |b| {
        b.iter_batched(
            || (Chain::new(), MemoryHashStore::new()),
            |(mut chain, mut store)| {
                for envelope in &envelopes {
                    let (_entry, leaf) = chain.append(envelope).unwrap();
                    store.append(leaf);
                }
                black_box(store.size())
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("baseline: sha256 of the same 1024 entries", |b| {
        let entries: Vec<Vec<u8>> = {
            let mut chain = Chain::new();
            envelopes.iter().map(|e| chain.append(e).unwrap().0).collect()
        };
        b.iter(|| {
            for entry in &entries {
                black_box(Sha256::digest(entry));
            }
        })
    });
    group.finish();
}

fn proofs(c: &mut Criterion) {
    let mut store = MemoryHashStore::new();
    let leaves: Vec<_> = (0..TREE_LEAVES).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    store.append_many(&leaves).unwrap();
    let root = store.root();
    let mut group = c.benchmark_group("proofs at 2^20 leaves");
    let mut index = 0u64;
    group.bench_function("prove_inclusion", |b| {
        b.iter(|| {
            index = (index + 7919) % TREE_LEAVES;
            black_box(prove_inclusion(TREE_LEAVES, index, &store).unwrap())
        })
    });
    let proof = prove_inclusion(TREE_LEAVES, 123_456, &store).unwrap();
    group.bench_function("verify_inclusion", |b| {
        b.iter(|| verify_inclusion(&proof, 123_456, TREE_LEAVES, &leaves[123_456], &root).unwrap())
    });
    group.bench_function("baseline: 20 sha256 of 65 B (one proof's hashing)", |b| {
        b.iter(|| {
            for _ in 0..20 {
                black_box(Sha256::digest([0u8; 65]));
            }
        })
    });
    group.finish();
}

fn checkpoints(c: &mut Criterion) {
    let signer = LogSigner::from_seed("fundtrail.example/ledger", &[7; 32]).unwrap();
    let verifier = signer.verifier();
    let checkpoint = Checkpoint::new("fundtrail.example/ledger", 1_234_567, leaf_hash(b"root")).unwrap();
    let note = signer.sign_checkpoint(&checkpoint).unwrap();
    let mut group = c.benchmark_group("checkpoint");
    group.bench_function("sign", |b| b.iter(|| signer.sign_checkpoint(&checkpoint).unwrap()));
    group.bench_function("verify", |b| b.iter(|| verifier.verify_checkpoint(&note).unwrap()));
    group.bench_function("baseline: sha256 of the note", |b| b.iter(|| black_box(Sha256::digest(&note))));
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = append, proofs, checkpoints
}
criterion_main!(benches);
