//! A donor's receipt: a C2SP tlog-proof whose `extra` is the 32-byte salt behind the
//! donor commitment in the donation event.
//!
//! Offline, with the receipt, the entry bytes and the log's key: the checkpoint's
//! signature, the entry's inclusion at the receipt's index, that the entry is a
//! donation (`donation.received` or `goods.received`) and, given the donor's
//! reference, that `donor_commitment(salt, reference)` is the event's commitment.
//! With a ledger: the entry can be read from its bundle, and the ledger's current
//! checkpoint is verified in full ([`verify_ledger`]) with the receipt's checkpoint as
//! the earlier one it must extend, so the ledger only grew; the report then says what
//! the fund did with its money.

use base64::Engine;
use fundtrail_domain::{donor_commitment, EventBody, FundId};
use fundtrail_envelope::dsse::WireEnvelope;
use fundtrail_envelope::PAYLOAD_TYPE;
use fundtrail_ledger::tiles::TILE_WIDTH;
use fundtrail_ledger::{decode_entry, LeafInput, LogVerifier, Receipt, ReceiptError, Tile};
use serde::Serialize;
use thiserror::Error;

use crate::report::{CheckpointInfo, FundReport};
use crate::source::{fetch_tile, LedgerSource, SourceError};
use crate::verify::{verify_ledger, Progress, VerifyFailure, VerifyOptions};

/// Size of the salt a donor commitment is made with.
pub const SALT_SIZE: usize = 32;

/// What a donor has in hand.
pub struct ReceiptInput<'a> {
    /// The receipt's bytes (C2SP tlog-proof).
    pub receipt: &'a [u8],
    /// The entry bytes (index ‖ prev ‖ envelope); read from the ledger when absent.
    pub entry: Option<&'a [u8]>,
    /// The donor's own reference (phone number, customer number) to match the commitment.
    pub donor_reference: Option<&'a str>,
    /// A ledger to check the receipt against now.
    pub ledger: Option<&'a dyn LedgerSource>,
}

/// Why a receipt was refused.
#[derive(Debug, Error)]
pub enum ReceiptFailure {
    #[error("{0}")]
    Receipt(ReceiptError),
    #[error("the receipt does not carry the entry: give the entry file, or a ledger to read it from")]
    NoEntry,
    #[error("reading entry {index} from the ledger: {source}")]
    FetchEntry { index: u64, source: SourceError },
    #[error("reading entry {index} from the ledger: {detail}")]
    EntryMissing { index: u64, detail: String },
    #[error("entry {index}: its envelope is not a readable event: {detail}")]
    Envelope { index: u64, detail: String },
    #[error("entry {index} is a {type_name} event, not a donation (donation.received or goods.received)")]
    NotADonation { index: u64, type_name: String },
    #[error("receipt for entry {index}: no 32-byte salt in its extra line, so the donor cannot be checked")]
    NoSalt { index: u64 },
    #[error("entry {index}: the donor reference given does not open the donor commitment {commitment}")]
    DonorMismatch { index: u64, commitment: String },
    #[error("the ledger does not stand by the receipt: {0}")]
    Ledger(VerifyFailure),
}

/// A receipt that verified, and what it is about.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiptReport {
    pub index: u64,
    /// The checkpoint the receipt proves inclusion in.
    pub checkpoint: CheckpointInfo,
    /// Base64 leaf hash of the entry.
    pub leaf: String,
    pub donation: DonationInfo,
    /// `true`: the reference given opens the commitment; `false`: not checked.
    pub donor_matched: bool,
    /// The ledger's current state, when a ledger was given.
    pub ledger: Option<LedgerView>,
}

/// The donation an entry records.
#[derive(Debug, Clone, Serialize)]
pub struct DonationInfo {
    pub event_id: String,
    /// `donation.received` or `goods.received`.
    pub kind: String,
    pub fund: String,
    /// Cash donations: the amount; goods: their estimated total value.
    pub amount_fen: i64,
    pub channel: String,
    /// RFC 3339 UTC.
    pub occurred_at: String,
    pub donor_commitment: String,
    /// Goods donated, as "name ×quantity unit" lines.
    pub goods: Vec<String>,
}

/// The ledger now: the checkpoint verified and the donation's fund at it.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerView {
    pub checkpoint: CheckpointInfo,
    pub fund: Option<FundReport>,
    /// Where the gift (cash or goods) went, recomputed by the auditor's own replay
    /// (docs/design.md §1.6).
    pub trace: Option<fundtrail_domain::GiftTrace>,
}

/// Verifies a donor's receipt; see the module docs.
pub fn verify_donor_receipt(
    input: &ReceiptInput<'_>,
    log: &LogVerifier,
    progress: Option<&mut dyn FnMut(Progress)>,
) -> Result<ReceiptReport, ReceiptFailure> {
    let parsed = Receipt::parse(input.receipt).map_err(ReceiptFailure::Receipt)?;
    let index = parsed.index;
    let fetched;
    let entry = match (input.entry, input.ledger) {
        (Some(entry), _) => entry,
        (None, Some(ledger)) => {
            fetched = fetch_entry(ledger, log, index)?;
            &fetched
        }
        (None, None) => return Err(ReceiptFailure::NoEntry),
    };
    let verified = fundtrail_ledger::verify_receipt(input.receipt, LeafInput::Entry(entry), log)
        .map_err(ReceiptFailure::Receipt)?;
    let envelope = decode_entry(entry).expect("verify_receipt decoded it").envelope;
    let donation = donation_of(index, envelope)?;
    let donor_matched = match input.donor_reference {
        None => false,
        Some(reference) => {
            let salt: [u8; SALT_SIZE] =
                verified.extra.as_deref().and_then(|e| e.try_into().ok()).ok_or(ReceiptFailure::NoSalt { index })?;
            if *donor_commitment(&salt, reference).to_text() != donation.donor_commitment {
                return Err(ReceiptFailure::DonorMismatch { index, commitment: donation.donor_commitment });
            }
            true
        }
    };
    let ledger = match input.ledger {
        None => None,
        Some(source) => {
            let options = VerifyOptions { previous: Some(verified.checkpoint.clone()), progress };
            let report = verify_ledger(source, log, options).map_err(ReceiptFailure::Ledger)?;
            let fund = report.funds.iter().find(|f| f.fund == donation.fund).cloned();
            let trace = fundtrail_domain::EventId::new(donation.event_id.as_str())
                .ok()
                .and_then(|id| fundtrail_domain::gift_trace(&report.state, &id));
            Some(LedgerView { checkpoint: report.checkpoint, fund, trace })
        }
    };
    Ok(ReceiptReport {
        index,
        checkpoint: CheckpointInfo::from(&verified.checkpoint),
        leaf: verified.leaf.to_base64(),
        donation,
        donor_matched,
        ledger,
    })
}

/// Entry `index` from its bundle in the ledger's current tree. Unauthenticated here:
/// the receipt's inclusion proof authenticates it.
fn fetch_entry(ledger: &dyn LedgerSource, log: &LogVerifier, index: u64) -> Result<Vec<u8>, ReceiptFailure> {
    let note = ledger.checkpoint().map_err(|source| ReceiptFailure::FetchEntry { index, source })?;
    let checkpoint = log
        .verify_checkpoint(&note)
        .map_err(|e| ReceiptFailure::EntryMissing { index, detail: format!("the ledger's checkpoint: {e}") })?;
    if index >= checkpoint.size {
        let detail = format!("the ledger's checkpoint has only {} entries", checkpoint.size);
        return Err(ReceiptFailure::EntryMissing { index, detail });
    }
    let n = index / u64::from(TILE_WIDTH);
    let width = (checkpoint.size - n * u64::from(TILE_WIDTH)).min(u64::from(TILE_WIDTH)) as u16;
    let bundle = Tile::entries(n, width);
    let data = fetch_tile(ledger, &bundle).map_err(|source| ReceiptFailure::FetchEntry { index, source })?;
    let entries = fundtrail_ledger::tiles::decode_entry_bundle(&bundle, &data)
        .map_err(|e| ReceiptFailure::EntryMissing { index, detail: e.to_string() })?;
    Ok(entries[(index % u64::from(TILE_WIDTH)) as usize].to_vec())
}

/// Reads the event inside an envelope, without its signature: the log's signature
/// over the checkpoint vouches for the entry; a ledger replay checks the author's.
fn donation_of(index: u64, envelope: &[u8]) -> Result<DonationInfo, ReceiptFailure> {
    let bad = |detail: String| ReceiptFailure::Envelope { index, detail };
    let value = fundtrail_envelope::strict::parse(envelope).map_err(|e| bad(e.to_string()))?;
    let wire = WireEnvelope::from_json(value).map_err(bad)?;
    if wire.payload_type != PAYLOAD_TYPE {
        return Err(bad(format!("payloadType {:?}", wire.payload_type)));
    }
    let payload = base64::engine::general_purpose::STANDARD
        .decode(&wire.payload)
        .map_err(|_| bad("payload is not base64".into()))?;
    let event = fundtrail_envelope::read_payload(&payload).map_err(|e| bad(e.to_string()))?;
    let occurred_at = fundtrail_domain::event::format_utc(&event.occurred_at);
    let fund: &FundId = &event.fund;
    let (amount_fen, channel, donor, goods) = match &event.body {
        EventBody::DonationReceived(d) => (d.amount_fen.fen(), d.channel, d.donor.clone(), Vec::new()),
        EventBody::GoodsReceived(g) => {
            let mut value: i64 = 0;
            for line in &g.items {
                let line_value = line.unit_value_fen.checked_mul(line.quantity).map_err(|e| bad(e.to_string()))?;
                value = value.checked_add(line_value.fen()).ok_or_else(|| bad("goods value overflows".into()))?;
            }
            let lines = g.items.iter().map(|l| format!("{} ×{} {}", l.name, l.quantity, l.unit)).collect();
            (value, g.channel, g.donor.clone(), lines)
        }
        other => {
            return Err(ReceiptFailure::NotADonation { index, type_name: other.type_name().to_string() });
        }
    };
    Ok(DonationInfo {
        event_id: event.id.to_string(),
        kind: event.type_name().to_string(),
        fund: fund.to_string(),
        amount_fen,
        channel: channel.as_str().to_string(),
        occurred_at,
        donor_commitment: donor.to_string(),
        goods,
    })
}
