//! Witness policies in verification: a checkpoint counts only with a quorum of valid
//! cosignatures by the policy's witnesses (C2SP tlog-policy; see
//! [`fundtrail_ledger::Policy`]). The same check serves `fundtrail verify --policy`
//! (the ledger's checkpoint) and `verify-receipt --policy` (the receipt's checkpoint,
//! which carries the cosignatures as signature lines, and the ledger's now).

use fundtrail_ledger::{Policy, PolicyCheckError};
use serde::Serialize;

/// Who witnessed a checkpoint, for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WitnessInfo {
    /// The quorum rule's name in the policy (`none`, a witness or a group).
    pub quorum: String,
    pub cosigned_by: Vec<CosignerInfo>,
    /// Policy names of the listed witnesses without a cosignature on it.
    pub missing: Vec<String>,
}

/// One valid cosignature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CosignerInfo {
    /// The witness's name in the policy.
    pub witness: String,
    /// The witness's key name.
    pub key_name: String,
    /// POSIX seconds at which it cosigned.
    pub timestamp: u64,
}

/// Checks a signed checkpoint note against `policy`: a listed log's signature, every
/// listed witness's cosignature that is present, and the quorum.
pub fn check_policy(note: &[u8], policy: &Policy) -> Result<WitnessInfo, PolicyCheckError> {
    let witnessed = policy.verify_checkpoint(note)?;
    let cosigned_by = witnessed
        .cosigned_by
        .iter()
        .map(|(witness, c)| CosignerInfo { witness: witness.clone(), key_name: c.name.clone(), timestamp: c.timestamp })
        .collect();
    Ok(WitnessInfo { quorum: witnessed.quorum, cosigned_by, missing: witnessed.missing })
}
