//! Test support: a realistic ledger of really signed events, published in the C2SP
//! tlog-tiles layout into a directory, as the ledger projection would publish it.
//!
//! Unlike `fundtrail_domain::testing::World` (stand-in keys that cannot sign), every
//! actor here has a real Ed25519 [`ActorKey`] (seeded from its name, so runs are
//! reproducible), and every event accepted by [`LedgerBuilder::given`] went through the
//! real [`Fold`]. Used by this crate's tests and benchmark and by the CLI's tests.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Duration, TimeZone, Utc};
use fundtrail_domain::event::*;
use fundtrail_domain::ids::*;
use fundtrail_domain::testing::{approve, hash, payout, pid, proposal, vote};
use fundtrail_domain::{donor_commitment, Fen};
use fundtrail_envelope::{ActorKey, Fold};
use fundtrail_ledger::tiles::{encode_entry_bundle, new_tiles, read_tile};
use fundtrail_ledger::{build_receipt, prove_inclusion, Chain, Checkpoint, LogSigner, MemoryHashStore, TileKind};
use sha2::{Digest, Sha256};

/// The fund every built ledger opens.
pub const FUND: &str = "xihu-01";
/// The log's origin (and key name).
pub const ORIGIN: &str = "fundtrail.example/ledger";

/// Builds a ledger event by event, each really signed and folded.
pub struct LedgerBuilder {
    keys: BTreeMap<String, ActorKey>,
    /// Every envelope, in ledger order.
    pub envelopes: Vec<Vec<u8>>,
    /// The fold of every envelope given through [`LedgerBuilder::given`].
    pub fold: Fold,
    now: DateTime<Utc>,
    counter: u64,
    /// The log's checkpoint key.
    pub signer: LogSigner,
    /// The entry index of each donation [`LedgerBuilder::realistic`] made, by donor.
    pub donation_indexes: Vec<u64>,
}

/// A ledger written to a directory.
pub struct Published {
    pub entries: Vec<Vec<u8>>,
    pub tree: MemoryHashStore,
    /// The signed checkpoint of the whole ledger.
    pub note: Vec<u8>,
    pub checkpoint: Checkpoint,
}

impl Default for LedgerBuilder {
    fn default() -> Self {
        LedgerBuilder::new()
    }
}

impl LedgerBuilder {
    /// An empty ledger with the log key seeded from `[7; 32]`.
    pub fn new() -> LedgerBuilder {
        LedgerBuilder {
            keys: BTreeMap::new(),
            envelopes: Vec::new(),
            fold: Fold::new(),
            now: Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap(),
            counter: 0,
            signer: LogSigner::from_seed(ORIGIN, &[7; 32]).expect("valid origin"),
            donation_indexes: Vec::new(),
        }
    }

    /// Genesis, enrolment, fund [`FUND`] opened, roles granted, committee of five
    /// seated: `admin`, `intake`, `proposer`, `c1`..`c5`, `approver`, `treasurer`.
    pub fn with_fund() -> LedgerBuilder {
        let mut b = LedgerBuilder::new();
        let admin = b.key_id("admin");
        let public_key = b.key("admin").public_key_b64();
        b.given(
            "admin",
            HOST_SCOPE,
            EventBody::HostEstablished(HostEstablished {
                host_name: "某市慈善总会".into(),
                host_key: admin,
                public_key,
            }),
        );
        let roles = [
            ("intake", Role::Intake),
            ("proposer", Role::Proposer),
            ("c1", Role::CommitteeMember),
            ("c2", Role::CommitteeMember),
            ("c3", Role::CommitteeMember),
            ("c4", Role::CommitteeMember),
            ("c5", Role::CommitteeMember),
            ("approver", Role::HostApprover),
            ("treasurer", Role::HostTreasurer),
        ];
        for (name, _) in roles {
            let key = b.key_id(name);
            let public_key = b.key(name).public_key_b64();
            b.given("admin", HOST_SCOPE, EventBody::KeyEnrolled(KeyEnrolled { key, public_key, label: name.into() }));
        }
        b.given(
            "admin",
            FUND,
            EventBody::FundOpened(FundOpened {
                name: "西湖街道社区发展基金".into(),
                community: "西湖街道".into(),
                currency: "CNY".into(),
                agreement: hash("agreement"),
            }),
        );
        for (name, role) in roles {
            let key = b.key_id(name);
            b.given("admin", FUND, EventBody::RoleGranted(RoleGranted { key, role }));
        }
        let members = ["c1", "c2", "c3", "c4", "c5"].map(|n| b.key_id(n)).to_vec();
        b.given("admin", FUND, EventBody::CommitteeSeated(CommitteeSeated { members, minutes: hash("minutes") }));
        b
    }

    /// The actor's key, seeded from SHA-256 of its name.
    pub fn key(&mut self, name: &str) -> &ActorKey {
        self.keys
            .entry(name.to_string())
            .or_insert_with(|| ActorKey::from_seed(&Sha256::digest(name.as_bytes()).into()))
    }

    pub fn key_id(&mut self, name: &str) -> KeyId {
        self.key(name).key_id()
    }

    /// An event by `author` in `fund`, one minute after the previous one.
    pub fn event(&mut self, author: &str, fund: &str, body: EventBody) -> Event {
        self.now += Duration::minutes(1);
        self.counter += 1;
        Event {
            id: EventId::new(format!("0190a000-0000-7000-8000-{:012x}", self.counter)).expect("valid id"),
            fund: FundId::new(fund).expect("valid fund"),
            occurred_at: self.now,
            author: self.key_id(author),
            v: body.event_type().version(),
            body,
        }
    }

    /// Signs an event by `author` without folding it (for building bad ledgers).
    pub fn sign(&mut self, author: &str, fund: &str, body: EventBody) -> Vec<u8> {
        let event = self.event(author, fund, body);
        self.key(author).sign_event(&event)
    }

    /// Signs, folds (it must be accepted) and appends an event; returns its index.
    pub fn given(&mut self, author: &str, fund: &str, body: EventBody) -> u64 {
        let envelope = self.sign(author, fund, body);
        let index = self.envelopes.len() as u64;
        if let Err(e) = self.fold.apply(index + 1, None, &envelope) {
            panic!("event {index} by {author} was refused: {e}");
        }
        self.envelopes.push(envelope);
        index
    }

    /// Appends an envelope without folding it (a bad event for a tamper test): the
    /// builder's fold skips it, as every reader's fold would.
    pub fn push_unfolded(&mut self, envelope: Vec<u8>) -> u64 {
        let index = self.envelopes.len() as u64;
        self.fold.skip(index + 1);
        self.envelopes.push(envelope);
        index
    }

    /// A cash donation by the donor `reference`, committed with `salt`.
    pub fn donate(&mut self, amount: Fen, channel: Channel, salt: &[u8; 32], reference: &str) -> u64 {
        let body = EventBody::DonationReceived(DonationReceived {
            amount_fen: amount,
            channel,
            donor: donor_commitment(salt, reference),
            payment_ref: format!("WX-{:06}", self.counter + 1),
            pledge: None,
            restricted_purpose: None,
        });
        self.given("intake", FUND, body)
    }

    /// Proposal `id` for `yuan`: submitted, five votes, endorsed, applied, approved.
    pub fn approved_proposal(&mut self, id: &str, yuan: i64) {
        self.given("proposer", FUND, proposal(id, yuan));
        for c in ["c1", "c2", "c3", "c4", "c5"] {
            self.given(c, FUND, vote(id, VoteChoice::Approve));
        }
        self.given("c1", FUND, EventBody::ProposalEndorsed(ProposalEndorsed { proposal: pid(id), minutes: hash("m") }));
        self.given("proposer", FUND, EventBody::ApplicationSubmitted(ApplicationSubmitted { proposal: pid(id) }));
        self.given("approver", FUND, approve(id, yuan));
    }

    /// Pays `amount` out against approved proposal `id`.
    pub fn pay(&mut self, id: &str, amount: Fen) -> u64 {
        self.given("treasurer", FUND, payout(id, amount))
    }

    /// A year of a fund: `donations` donations over the four channels (amounts vary,
    /// donor `i` committed with salt [`salt_of`]`(i)`), a bag of rice in kind, and a
    /// proposal approved and partly paid.
    pub fn realistic(donations: u32) -> LedgerBuilder {
        let mut b = LedgerBuilder::with_fund();
        for i in 0..donations {
            let channel = Channel::ALL[i as usize % Channel::ALL.len()];
            let amount = Fen::new(1_000 + i64::from(i % 97) * 1_234).expect("in range");
            let index = b.donate(amount, channel, &salt_of(i), &donor_reference(i));
            b.donation_indexes.push(index);
            if i == donations / 2 {
                b.given(
                    "intake",
                    FUND,
                    EventBody::GoodsReceived(GoodsReceived {
                        channel: Channel::NeighbourhoodMarket,
                        donor: hash("merchant"),
                        items: vec![GoodsLine {
                            name: "大米".into(),
                            quantity: 20,
                            unit: "袋".into(),
                            unit_value_fen: Fen::yuan(60),
                        }],
                        pledge: None,
                        restricted_purpose: None,
                    }),
                );
            }
        }
        b.approved_proposal("P-1", 500);
        b.pay("P-1", Fen::yuan(320));
        b
    }

    /// The entries and tree of the envelopes so far.
    pub fn entries(&self) -> (Vec<Vec<u8>>, MemoryHashStore) {
        entries_of(&self.envelopes)
    }

    /// Publishes the ledger into `dir` as the projection would, growing through
    /// `steps` (tree sizes, ascending; the last is the whole ledger): each step writes
    /// its new tiles and bundles (partial ones included) and the checkpoint.
    pub fn publish(&self, dir: &Path, steps: &[u64]) -> Published {
        publish_envelopes(&self.envelopes, &self.signer, dir, steps)
    }
}

/// The salt behind donor `i`'s commitment in [`LedgerBuilder::realistic`].
pub fn salt_of(i: u32) -> [u8; 32] {
    Sha256::digest(format!("salt {i}").as_bytes()).into()
}

/// Donor `i`'s reference (a phone number) in [`LedgerBuilder::realistic`].
pub fn donor_reference(i: u32) -> String {
    format!("+86 138 0000 {i:04}")
}

/// Entries and tree of `envelopes`.
pub fn entries_of(envelopes: &[Vec<u8>]) -> (Vec<Vec<u8>>, MemoryHashStore) {
    let mut chain = Chain::new();
    let mut tree = MemoryHashStore::new();
    let mut entries = Vec::with_capacity(envelopes.len());
    for envelope in envelopes {
        let (entry, leaf) = chain.append(envelope).expect("envelope fits an entry");
        tree.append(leaf);
        entries.push(entry);
    }
    (entries, tree)
}

/// Publishes `envelopes` into `dir` through the tree sizes `steps` (see
/// [`LedgerBuilder::publish`]); an empty `steps` publishes the whole ledger at once.
pub fn publish_envelopes(envelopes: &[Vec<u8>], signer: &LogSigner, dir: &Path, steps: &[u64]) -> Published {
    let (entries, tree) = entries_of(envelopes);
    let size = entries.len() as u64;
    let steps = if steps.is_empty() { vec![size] } else { steps.to_vec() };
    assert_eq!(steps.last(), Some(&size), "the last step publishes the whole ledger");
    let mut old = 0;
    let mut note = Vec::new();
    for &step in &steps {
        assert!(old <= step);
        for tile in new_tiles(old, step) {
            let data = match tile.kind {
                TileKind::Hashes { .. } => read_tile(&tile, &tree).expect("our tree has every hash"),
                TileKind::Entries => {
                    let start = (tile.n * 256) as usize;
                    encode_entry_bundle(&entries[start..start + usize::from(tile.width)]).expect("bundle")
                }
            };
            write(dir, &tile.path(), &data);
        }
        let root = fundtrail_ledger::tree_hash(step, &tree).expect("our tree has every hash");
        let checkpoint = Checkpoint::new(signer.name(), step, root).expect("valid checkpoint");
        note = signer.sign_checkpoint(&checkpoint).expect("signs");
        write(dir, "checkpoint", &note);
        old = step;
    }
    let checkpoint = Checkpoint::new(signer.name(), size, tree.root()).expect("valid checkpoint");
    Published { entries, tree, note, checkpoint }
}

/// Writes `data` at `path` under `dir`, creating directories.
pub fn write(dir: &Path, path: &str, data: &[u8]) {
    let file = dir.join(path);
    std::fs::create_dir_all(file.parent().expect("has a parent")).expect("create tile directory");
    std::fs::write(file, data).expect("write tile");
}

impl Published {
    /// The donor receipt for entry `index` in the published checkpoint, carrying `salt`.
    pub fn receipt(&self, index: u64, salt: Option<&[u8; 32]>) -> Vec<u8> {
        let proof = prove_inclusion(self.checkpoint.size, index, &self.tree).expect("index in range");
        build_receipt(index, proof, &self.note, salt.map(|s| s.to_vec()))
    }
}
