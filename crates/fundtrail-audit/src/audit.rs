//! The auditor's whole procedures, as `fundtrail verify` and `fundtrail verify-receipt`
//! run them: [`audit`] and [`audit_receipt`].
//!
//! [`audit`]:
//!
//! 1. With a witness policy, the published checkpoint must carry a quorum of its
//!    witnesses' cosignatures before anything is replayed (an unwitnessed ledger is
//!    refused at once, not after minutes of replay).
//! 2. The ledger (or the `FUNDTRAIL` stream, against the published checkpoint) is
//!    verified in full: [`verify_ledger_with`], [`verify_nats_with`], extending the
//!    checkpoint of the state file when there is one.
//! 3. With a policy, the checkpoint verified in full (which may be newer than the one
//!    of step 1) must be witnessed too.
//! 4. With a state file, it now holds the checkpoint verified in full (written
//!    atomically: see [`StateFile`]).
//!
//! [`audit_receipt`]: with a witness policy, the receipt's checkpoint (its cosignatures
//! ride in it as signature lines) and, when a ledger is given, the ledger's published
//! checkpoint must each carry a quorum; then the receipt is verified
//! ([`verify_donor_receipt`]), and the ledger's checkpoint verified in full must be the
//! witnessed one.

use std::path::Path;

use fundtrail_ledger::{LogVerifier, NoteError, Policy, PolicyCheckError, Receipt, ReceiptError};
use fundtrail_store::NatsConnect;

use crate::{
    check_policy, verify_donor_receipt, verify_ledger_with, verify_nats_with, LedgerSource, Progress, ReceiptFailure,
    ReceiptInput, ReceiptReport, Report, SourceError, StateError, StateFile, Threads, VerifyFailure, VerifyOptions,
    WitnessInfo,
};

/// What to audit, and against what.
pub struct AuditRequest<'a> {
    /// The log's key: the checkpoint's signature.
    pub log: &'a LogVerifier,
    /// The witnesses whose quorum must have cosigned the checkpoint.
    pub policy: Option<&'a Policy>,
    /// The published ledger; with `nats`, only its checkpoint is read, as the one the
    /// stream is compared with.
    pub ledger: Option<&'a dyn LedgerSource>,
    /// Replay the `FUNDTRAIL` stream from these servers (read-only) instead of the
    /// ledger's entries.
    pub nats: Option<&'a NatsConnect>,
    /// The verifier's memory between runs: the ledger must extend the checkpoint it
    /// holds, and it holds the new one afterwards.
    pub state: Option<&'a Path>,
    /// Threads that check signatures.
    pub threads: Threads,
}

/// An audit that passed: what was verified, and who witnessed it.
pub struct Audited {
    pub report: Report,
    /// With a policy: the witnesses that cosigned the checkpoint verified in full.
    pub witnesses: Option<WitnessInfo>,
}

/// Why an audit did not pass. Only [`AuditError::Unwitnessed`] and
/// [`AuditError::Failed`] are verdicts on the ledger ([`AuditError::is_verdict`]); the
/// rest say it could not be judged.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("give a ledger or a NATS stream to verify")]
    NothingToVerify,
    #[error("reading the ledger's checkpoint: {0}")]
    Checkpoint(SourceError),
    #[error("the ledger's checkpoint: {0}")]
    Unwitnessed(PolicyCheckError),
    #[error(transparent)]
    Failed(VerifyFailure),
    #[error(transparent)]
    State(StateError),
}

impl AuditError {
    /// The ledger entry at fault, when the fault is in one.
    pub fn index(&self) -> Option<u64> {
        match self {
            AuditError::Failed(failure) => failure.index,
            _ => None,
        }
    }

    /// Whether this is a verdict on the ledger (refused), not a failure to judge it.
    pub fn is_verdict(&self) -> bool {
        matches!(self, AuditError::Unwitnessed(_) | AuditError::Failed(_))
    }
}

/// Runs the auditor's procedure (see the module docs); `progress` is called as
/// entries are verified.
pub fn audit(request: &AuditRequest<'_>, progress: Option<&mut dyn FnMut(Progress)>) -> Result<Audited, AuditError> {
    let AuditRequest { log, policy, ledger, nats, state, threads } = *request;
    let witnessed = |note: &[u8]| match policy {
        Some(policy) => check_policy(note, policy).map(Some).map_err(AuditError::Unwitnessed),
        None => Ok(None),
    };
    if let (Some(ledger), Some(_)) = (ledger, policy) {
        witnessed(&ledger.checkpoint().map_err(AuditError::Checkpoint)?)?;
    }
    let previous = match state {
        Some(path) => StateFile::load(path, log).map_err(AuditError::State)?,
        None => None,
    };
    let options = VerifyOptions { previous, progress };
    let report = match (nats, ledger) {
        (Some(nats), ledger) => verify_nats_with(nats, ledger, log, options, threads),
        (None, Some(ledger)) => verify_ledger_with(ledger, log, options, threads),
        (None, None) => return Err(AuditError::NothingToVerify),
    }
    .map_err(AuditError::Failed)?;
    let witnesses = witnessed(report.note.as_bytes())?;
    if let Some(path) = state {
        let checkpoint = log.verify_checkpoint(report.note.as_bytes()).expect("the report's note verified");
        StateFile::of(&checkpoint, &report.note).save(path).map_err(AuditError::State)?;
    }
    Ok(Audited { report, witnesses })
}

/// A donor's receipt that passed: what it proves, and who witnessed its checkpoint.
pub struct ReceiptAudited {
    pub report: ReceiptReport,
    /// With a policy: the witnesses that cosigned the receipt's checkpoint.
    pub witnesses: Option<WitnessInfo>,
}

/// Why a receipt's audit did not pass. [`ReceiptAuditError::is_verdict`] tells a
/// refusal of the receipt or the ledger from a failure to judge them.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptAuditError {
    #[error("{0}")]
    Receipt(ReceiptError),
    #[error("reading the ledger's checkpoint: {0}")]
    Checkpoint(SourceError),
    #[error("{what}: {cause}")]
    Unwitnessed { what: &'static str, cause: PolicyCheckError },
    #[error(transparent)]
    Failed(ReceiptFailure),
    #[error("the ledger's checkpoint: {0}")]
    NotSigned(NoteError),
    #[error("the ledger's checkpoint changed during verification (size {before} → {after}): run again")]
    Changed { before: u64, after: u64 },
}

impl ReceiptAuditError {
    /// The ledger entry at fault, when the fault is in one.
    pub fn index(&self) -> Option<u64> {
        match self {
            ReceiptAuditError::Failed(ReceiptFailure::Ledger(failure)) => failure.index,
            _ => None,
        }
    }

    /// Whether this refuses the receipt or the ledger (not a failure to judge them).
    pub fn is_verdict(&self) -> bool {
        matches!(
            self,
            ReceiptAuditError::Receipt(_) | ReceiptAuditError::Unwitnessed { .. } | ReceiptAuditError::Failed(_)
        )
    }
}

/// Audits a donor's receipt (see the module docs) against the log's key and, when
/// given, a witness policy; `progress` is called as a ledger's entries are verified.
pub fn audit_receipt(
    input: &ReceiptInput<'_>,
    log: &LogVerifier,
    policy: Option<&Policy>,
    progress: Option<&mut dyn FnMut(Progress)>,
) -> Result<ReceiptAudited, ReceiptAuditError> {
    // Only called with a policy: each check is under its `Some`.
    let witnessed = |note: &[u8], policy: &Policy, what: &'static str| {
        check_policy(note, policy).map_err(|cause| ReceiptAuditError::Unwitnessed { what, cause })
    };
    let witnesses = match policy {
        Some(policy) => {
            let receipt = Receipt::parse(input.receipt).map_err(ReceiptAuditError::Receipt)?;
            Some(witnessed(&receipt.checkpoint, policy, "the receipt's checkpoint")?)
        }
        None => None,
    };
    let ledger_note = match (input.ledger, policy) {
        (Some(ledger), Some(policy)) => {
            let note = ledger.checkpoint().map_err(ReceiptAuditError::Checkpoint)?;
            witnessed(&note, policy, "the ledger's checkpoint")?;
            Some(note)
        }
        _ => None,
    };
    let report = verify_donor_receipt(input, log, progress).map_err(ReceiptAuditError::Failed)?;
    if let (Some(note), Some(now)) = (&ledger_note, &report.ledger) {
        let witnessed = log.verify_checkpoint(note).map_err(ReceiptAuditError::NotSigned)?;
        if witnessed.size != now.checkpoint.size || witnessed.root.to_base64() != now.checkpoint.root {
            return Err(ReceiptAuditError::Changed { before: witnessed.size, after: now.checkpoint.size });
        }
    }
    Ok(ReceiptAudited { report, witnesses })
}
