//! A **round job**: what the relay registers in an Ark batch round, one
//! intent each — its own VTXOs and boarding outputs renewed or turned into
//! new VTXOs (relay-signed), or a user's pre-signed delegation (helper D's
//! renewals and recoveries, [`Delegation`]).
//!
//! Jobs are queued with `engine::rounds::RoundJobs::enqueue` (persisted in
//! `round_jobs`) and taken by the next participation. A job whose round fails
//! goes back to the queue unchanged and is registered again, identical (same
//! inputs, same outputs), in the next round.

use ark_relay_core::{PubKey, Sats, Tapscripts, UnixTime, VtxoId};
use bitcoin::secp256k1::PublicKey;
use bitcoin::{OutPoint, Psbt};
use serde::{Deserialize, Serialize};

/// Why the job exists (`round_jobs.kind`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JobKind {
    /// New inventory VTXOs from the relay's boarding outputs (a replenishment
    /// batch of the inventory monitor).
    InventoryBoard {
        /// The `vtxo_inventory` batch it fills.
        batch_id: String,
    },
    /// The relay's own VTXOs renewed before expiry, to the same key, sats and
    /// assets.
    InventoryRenew,
    /// A user's VTXO renewed from its pre-signed delegation.
    DelegatedRenewal,
    /// A swept (recoverable) VTXO reclaimed for its owner.
    Recovery,
}

impl JobKind {
    /// The stored name.
    pub fn name(&self) -> &'static str {
        match self {
            JobKind::InventoryBoard { .. } => "inventory_board",
            JobKind::InventoryRenew => "inventory_renew",
            JobKind::DelegatedRenewal => "delegated_renewal",
            JobKind::Recovery => "recovery",
        }
    }
}

/// An asset amount carried by a VTXO (arkd asset id, 68 hex).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JobAsset {
    /// The arkd asset id (`txid ‖ index`, hex).
    pub asset_id: String,
    /// Base units.
    pub amount: u64,
}

/// One input of a job's intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JobInput {
    /// A VTXO the relay owns: the relay key signs the proof and its forfeit.
    RelayVtxo {
        /// Its outpoint.
        vtxo: VtxoId,
        /// Its sats.
        sats: Sats,
        /// Its Taproot leaves (the forfeit leaf is found among them).
        tapscripts: Tapscripts,
        /// Swept by the server (recoverable: no forfeit).
        #[serde(default)]
        swept: bool,
        /// Assets it carries (kept by the renewal's outputs).
        #[serde(default)]
        assets: Vec<JobAsset>,
    },
    /// A confirmed output at the relay's boarding address: the relay signs
    /// the proof and, at finalization, its input of the commitment tx.
    Boarding {
        /// The on-chain outpoint.
        outpoint: OutPoint,
        /// Its value.
        sats: Sats,
    },
    /// A user's VTXO inside the job's [`Delegation`] (already signed).
    Delegated {
        /// Its outpoint.
        vtxo: VtxoId,
        /// Its owner.
        owner: PubKey,
        /// Its sats.
        sats: Sats,
        /// Assets it carries.
        #[serde(default)]
        assets: Vec<JobAsset>,
    },
}

impl JobInput {
    /// The outpoint it spends.
    pub fn outpoint(&self) -> OutPoint {
        match self {
            JobInput::RelayVtxo { vtxo, .. } | JobInput::Delegated { vtxo, .. } => vtxo.outpoint(),
            JobInput::Boarding { outpoint, .. } => *outpoint,
        }
    }

    /// Its sats.
    pub fn sats(&self) -> Sats {
        match self {
            JobInput::RelayVtxo { sats, .. }
            | JobInput::Boarding { sats, .. }
            | JobInput::Delegated { sats, .. } => *sats,
        }
    }

    /// Whether the server needs a forfeit for it (a VTXO, not swept).
    pub fn needs_forfeit(&self) -> bool {
        match self {
            JobInput::RelayVtxo { swept, .. } => !swept,
            JobInput::Boarding { .. } => false,
            JobInput::Delegated { .. } => true,
        }
    }
}

/// One output the job's intent asks the round to create (an off-chain VTXO
/// at the owner's default VTXO script).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JobOutput {
    /// Who owns the new VTXO.
    pub owner: PubKey,
    /// Its sats.
    pub sats: Sats,
    /// Assets it carries.
    #[serde(default)]
    pub assets: Vec<JobAsset>,
}

/// A user's pre-signed delegation (ark-core 0.12 `batch::Delegate`): the
/// intent proof and message the owner signed (with the relay's cosigner key
/// as the intent's cosigner) and its `SIGHASH_ALL|ANYONECANPAY` forfeits,
/// which the relay completes with the round's connectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delegation {
    /// The signed intent proof.
    #[serde(with = "super::b64::psbt")]
    pub intent_proof: Psbt,
    /// The intent message JSON, exactly as signed.
    pub intent_message: String,
    /// The partial forfeits (one input each, 0x81 signatures).
    #[serde(with = "super::b64::psbts")]
    pub forfeit_psbts: Vec<Psbt>,
    /// The cosigner key the owner named (must be the relay's).
    pub delegate_cosigner_pk: PublicKey,
}

/// What to register in a round (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundJob {
    /// Unique id (enqueue is idempotent by it).
    pub job_id: String,
    /// Why.
    pub kind: JobKind,
    /// The inputs (relay VTXOs and boarding outputs, or the delegated VTXOs).
    pub inputs: Vec<JobInput>,
    /// The outputs the round must create for this job.
    pub outputs: Vec<JobOutput>,
    /// For a delegated job: the owner's signed intent and forfeits.
    #[serde(default)]
    pub delegation: Option<Delegation>,
    /// Not registered before this time (a delegation's `valid_at`).
    pub not_before: UnixTime,
}

/// Why a job is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// No inputs or no outputs.
    #[error("a round job needs inputs and outputs")]
    Empty,
    /// The same outpoint twice.
    #[error("input {0} appears twice")]
    DuplicateInput(OutPoint),
    /// Outputs carry more sats than the inputs.
    #[error("outputs ({outputs} sats) exceed inputs ({inputs} sats)")]
    Unbalanced {
        /// Σ inputs.
        inputs: u64,
        /// Σ outputs.
        outputs: u64,
    },
    /// Delegated inputs without a delegation, or relay inputs with one.
    #[error("delegated inputs and the delegation must come together")]
    Delegation,
}

impl RoundJob {
    /// Checks the job's shape: inputs and outputs present, no outpoint twice,
    /// outputs not above inputs (the difference is the round's intent fee),
    /// delegated inputs exactly when a delegation is given.
    pub fn validate(&self) -> Result<(), JobError> {
        if self.inputs.is_empty() || self.outputs.is_empty() {
            return Err(JobError::Empty);
        }
        let mut seen = std::collections::BTreeSet::new();
        for i in &self.inputs {
            if !seen.insert(i.outpoint()) {
                return Err(JobError::DuplicateInput(i.outpoint()));
            }
        }
        let inputs: u64 = self.inputs.iter().map(|i| i.sats().get()).sum();
        let outputs: u64 = self.outputs.iter().map(|o| o.sats.get()).sum();
        if outputs > inputs {
            return Err(JobError::Unbalanced { inputs, outputs });
        }
        let delegated = self
            .inputs
            .iter()
            .any(|i| matches!(i, JobInput::Delegated { .. }));
        let own = self
            .inputs
            .iter()
            .any(|i| !matches!(i, JobInput::Delegated { .. }));
        if (delegated || self.delegation.is_some())
            && (own || !delegated || self.delegation.is_none())
        {
            return Err(JobError::Delegation);
        }
        Ok(())
    }

    /// Whether the relay signs this job's intent (no delegation).
    pub fn relay_signed(&self) -> bool {
        self.delegation.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;

    fn key() -> PubKey {
        "cd3f1744093700028f56e179906aa84245dd3ffbfea176180f60896936958d8e"
            .parse()
            .expect("key")
    }

    fn vtxo(n: u8, sats: u64) -> JobInput {
        JobInput::RelayVtxo {
            vtxo: VtxoId::new(bitcoin::Txid::from_byte_array([n; 32]), 0),
            sats: Sats::new(sats),
            tapscripts: Tapscripts(vec![]),
            swept: false,
            assets: vec![],
        }
    }

    fn job(inputs: Vec<JobInput>, out: u64) -> RoundJob {
        RoundJob {
            job_id: "j".into(),
            kind: JobKind::InventoryRenew,
            inputs,
            outputs: vec![JobOutput {
                owner: key(),
                sats: Sats::new(out),
                assets: vec![],
            }],
            delegation: None,
            not_before: UnixTime(0),
        }
    }

    #[test]
    fn jobs_are_checked() {
        assert_eq!(job(vec![vtxo(1, 500)], 500).validate(), Ok(()));
        assert_eq!(job(vec![], 500).validate(), Err(JobError::Empty));
        assert_eq!(
            job(vec![vtxo(1, 500)], 501).validate(),
            Err(JobError::Unbalanced {
                inputs: 500,
                outputs: 501
            })
        );
        assert!(matches!(
            job(vec![vtxo(1, 500), vtxo(1, 500)], 500).validate(),
            Err(JobError::DuplicateInput(_))
        ));
        let delegated = JobInput::Delegated {
            vtxo: VtxoId::new(bitcoin::Txid::from_byte_array([2; 32]), 0),
            owner: key(),
            sats: Sats::new(500),
            assets: vec![],
        };
        assert_eq!(
            job(vec![delegated], 500).validate(),
            Err(JobError::Delegation),
            "delegated inputs need their delegation"
        );
        let json = serde_json::to_string(&job(vec![vtxo(1, 500)], 500)).expect("json");
        let back: RoundJob = serde_json::from_str(&json).expect("back");
        assert_eq!(back, job(vec![vtxo(1, 500)], 500));
        assert_eq!(JobKind::InventoryRenew.name(), "inventory_renew");
    }
}
