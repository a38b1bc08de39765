//! The relay's side of one delegation, pure: the `sign_renewal` challenge for
//! a VTXO a wallet owns (ark-core 0.12 `prepare_delegate_psbts_at` with the
//! asset preservation packet), and, from the wallet's answer, the signed
//! delegation checked signature by signature and turned into a
//! [`RoundJob`] for `rounds::RoundJobs::enqueue` (helper C's queue).

use ark_core::batch::{prepare_delegate_psbts_at, Delegate};
use ark_core::intent;
use ark_relay_ark::asset::ArkadeAssetId;
use ark_relay_ark::ServerInfo;
use ark_relay_ceremony::round::{Delegation, JobAsset, JobInput, JobKind, JobOutput, RoundJob};
use ark_relay_core::{PubKey, Sats, UnixTime, VtxoId};
use ark_relay_protocol::renewal::{
    renewal_id, RenewalAsset, RenewalChallenge, RenewalResponse, RenewalType,
};
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{schnorr, Message, PublicKey, Secp256k1};
use bitcoin::sighash::{Prevouts, SighashCache};
use bitcoin::{taproot, Address, Amount, Psbt, Sequence, TapSighashType, TxOut};

/// Why a delegation cannot be built or accepted.
#[derive(Debug, thiserror::Error)]
pub enum RenewalError {
    /// The VTXO cannot be renewed as asked (script, fee, amounts).
    #[error("cannot build the renewal: {0}")]
    Build(String),
    /// ark-core refused to build the delegation.
    #[error("ark-core: {0}")]
    ArkCore(String),
    /// The wallet's answer does not complete the delegation.
    #[error("bad renewal answer: {0}")]
    Answer(String),
}

/// One VTXO to renew (or recover) for its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewalSpec {
    /// The VTXO.
    pub vtxo: VtxoId,
    /// Its owner (its script is the owner's default VTXO script).
    pub owner: PubKey,
    /// Its sats.
    pub sats: u64,
    /// Its assets (Arkade ids, as the indexer reports them).
    pub assets: Vec<(ArkadeAssetId, u64)>,
    /// When it was created and when it expires (unix s).
    pub created_at: i64,
    /// Expiry.
    pub expires_at: i64,
    /// Swept already: a recovery (no forfeit, valid now).
    pub recovery: bool,
}

/// Renewal policy (config `renewal.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewalPolicy {
    /// Valid from `created + lifetime × valid_at_percent / 100` (default 90).
    pub valid_at_percent: u8,
    /// The published renewal fee (sats, default 0).
    pub fee_sats: u64,
    /// How long the wallet has to answer (s).
    pub challenge_ttl_secs: i64,
}

impl Default for RenewalPolicy {
    fn default() -> Self {
        Self {
            valid_at_percent: 90,
            fee_sats: 0,
            challenge_ttl_secs: 600,
        }
    }
}

impl RenewalPolicy {
    /// When a renewal of a VTXO created at `created` expiring at `expires`
    /// may be registered (a recovery: `now`).
    pub fn valid_at(&self, spec: &RenewalSpec, now: i64) -> i64 {
        if spec.recovery {
            return now;
        }
        let life = spec.expires_at.saturating_sub(spec.created_at).max(0);
        spec.created_at + life * i64::from(self.valid_at_percent.min(99)) / 100
    }
}

/// A built delegation waiting for the owner's signatures. Everything in it
/// is in the challenge ([`PendingDelegation::from_challenge`]), so the store
/// keeps only the challenge.
#[derive(Debug, Clone)]
pub struct PendingDelegation {
    /// What the wallet is sent.
    pub challenge: RenewalChallenge,
    /// The unsigned intent proof.
    pub proof: Psbt,
    /// The unsigned forfeits.
    pub forfeits: Vec<Psbt>,
    /// The relay's cosigner key named in the message.
    pub cosigner: PublicKey,
}

impl PendingDelegation {
    /// The delegation a stored challenge carries.
    pub fn from_challenge(challenge: RenewalChallenge) -> Result<Self, RenewalError> {
        let psbt = |s: &str| {
            s.parse::<Psbt>()
                .map_err(|e| RenewalError::Build(format!("stored psbt: {e}")))
        };
        Ok(Self {
            proof: psbt(&challenge.intent_proof)?,
            forfeits: challenge
                .forfeit_psbts
                .iter()
                .map(|f| psbt(f))
                .collect::<Result<_, _>>()?,
            cosigner: challenge
                .delegate_cosigner_pk
                .parse()
                .map_err(|e| RenewalError::Build(format!("stored cosigner: {e}")))?,
            challenge,
        })
    }
}

fn b64(p: &Psbt) -> String {
    // rust-bitcoin's PSBT display: standard base64 of the serialization.
    p.to_string()
}

/// Builds the `sign_renewal` challenge of `spec`: ark-core's delegation with
/// the relay's `cosigner` as the delegate, one offchain output to the owner
/// (sats − fee) first, then the preservation packet (input 1 → output 0).
pub fn build(
    server: &ServerInfo,
    forfeit_address: &Address,
    cosigner: PublicKey,
    policy: &RenewalPolicy,
    spec: &RenewalSpec,
    now: i64,
) -> Result<PendingDelegation, RenewalError> {
    let script = server.default_vtxo(&spec.owner);
    let owner_x = spec.owner.x_only();
    let leaf = script
        .collaborative_leaf(owner_x, server.signer())
        .ok_or_else(|| RenewalError::Build("no collaborative leaf".into()))?
        .clone();
    let control = script
        .control_block(&leaf)
        .map_err(|e| RenewalError::Build(e.to_string()))?;
    let prevout = TxOut {
        value: Amount::from_sat(spec.sats),
        script_pubkey: script.script_pubkey(),
    };
    let out_sats = spec
        .sats
        .checked_sub(policy.fee_sats)
        .filter(|s| *s >= server.dust().get())
        .ok_or_else(|| RenewalError::Build("the VTXO cannot pay the renewal fee".into()))?;
    let assets: Vec<ark_core::server::Asset> = spec
        .assets
        .iter()
        .map(|(id, amount)| ark_core::server::Asset {
            asset_id: *id,
            amount: *amount,
        })
        .collect();
    let input = intent::Input::new(
        spec.vtxo.outpoint(),
        Sequence::MAX,
        None,
        prevout.clone(),
        script.leaves().to_vec(),
        (leaf, control),
        false,
        spec.recovery,
        assets,
    );
    let mut outputs = vec![intent::Output::Offchain(TxOut {
        value: Amount::from_sat(out_sats),
        script_pubkey: prevout.script_pubkey.clone(),
    })];
    // The preservation packet, as the relay's own round jobs build it
    // (ark-core's `create_asset_preservation_packet`: every input asset to the
    // first offchain output; none for an uncoloured VTXO).
    if let Some(packet) =
        ark_core::batch::create_asset_preservation_packet(std::slice::from_ref(&input), &outputs)
            .map_err(|e| RenewalError::ArkCore(e.to_string()))?
    {
        outputs.push(intent::Output::AssetPacket(packet.to_txout()));
    }
    let valid_at = policy.valid_at(spec, now);
    let delegate: Delegate = prepare_delegate_psbts_at(
        vec![input],
        outputs,
        cosigner,
        forfeit_address,
        Amount::from_sat(server.dust().get()),
        Some(u64::try_from(valid_at).unwrap_or(0)),
    )
    .map_err(|e| RenewalError::ArkCore(e.to_string()))?;
    let message = delegate
        .intent
        .serialize_message()
        .map_err(|e| RenewalError::ArkCore(e.to_string()))?;
    let challenge = RenewalChallenge {
        v: 1,
        challenge_type: RenewalType::SignRenewal,
        renewal_id: renewal_id(&spec.vtxo, spec.recovery),
        vtxo: spec.vtxo,
        owner: spec.owner,
        sats: spec.sats,
        assets: spec
            .assets
            .iter()
            .map(|(id, amount)| RenewalAsset {
                asset_id: id.to_string(),
                amount: *amount,
            })
            .collect(),
        vtxo_expires_at: spec.expires_at,
        valid_at,
        recovery: spec.recovery,
        intent_proof: b64(&delegate.intent.proof),
        intent_message: message,
        forfeit_psbts: delegate.forfeit_psbts.iter().map(b64).collect(),
        delegate_cosigner_pk: cosigner.to_string(),
        fee: policy.fee_sats,
        human_readable_context: format!(
            "{} your VTXO {} ({} sats{}) in a round from {valid_at}, same owner, same assets, fee {} sats",
            if spec.recovery { "Recover" } else { "Renew" },
            spec.vtxo,
            spec.sats,
            if spec.assets.is_empty() { "" } else { " with its assets" },
            policy.fee_sats
        ),
        expires_at: now + policy.challenge_ttl_secs,
    };
    Ok(PendingDelegation {
        challenge,
        proof: delegate.intent.proof,
        forfeits: delegate.forfeit_psbts,
        cosigner,
    })
}

/// Inserts the wallet's signatures into the pending delegation, verifies every
/// one (proof inputs SIGHASH_DEFAULT, forfeit VTXO input 0x81, by the owner,
/// and all the owner's signatures present) and returns the round job that
/// renews the VTXO from `valid_at` on.
pub fn accept(
    pending: &PendingDelegation,
    answer: &RenewalResponse,
) -> Result<RoundJob, RenewalError> {
    let bad = |m: String| RenewalError::Answer(m);
    if let Some(why) = &answer.reject {
        return Err(bad(format!("refused: {why}")));
    }
    if answer.renewal_id != pending.challenge.renewal_id {
        return Err(bad("answers another renewal".into()));
    }
    let owner = *pending.challenge.owner.x_only();
    let mut proof = pending.proof.clone();
    let mut forfeits = pending.forfeits.clone();
    for s in &answer.signatures {
        let bytes = <Vec<u8> as bitcoin::hex::FromHex>::from_hex(&s.sig)
            .map_err(|_| bad("signature is not hex".into()))?;
        let sig =
            taproot::Signature::from_slice(&bytes).map_err(|e| bad(format!("signature: {e}")))?;
        let psbt = match s.psbt_index {
            0 => &mut proof,
            n => usize::try_from(n - 1)
                .ok()
                .and_then(|i| forfeits.get_mut(i))
                .ok_or_else(|| bad(format!("no psbt {n}")))?,
        };
        let index = usize::try_from(s.input_index).unwrap_or(usize::MAX);
        let expected = if s.psbt_index == 0 {
            TapSighashType::Default
        } else {
            TapSighashType::AllPlusAnyoneCanPay
        };
        if sig.sighash_type != expected {
            return Err(bad(format!("psbt {}: wrong sighash type", s.psbt_index)));
        }
        verify(psbt, index, &owner, &sig.signature, expected)?;
        let leaf_hash = leaf_hash_of(psbt, index)?;
        if let Some(input) = psbt.inputs.get_mut(index) {
            input.tap_script_sigs.insert((owner, leaf_hash), sig);
        }
    }
    let signed = |p: &Psbt, i: usize| {
        p.inputs
            .get(i)
            .is_some_and(|x| x.tap_script_sigs.keys().any(|(k, _)| *k == owner))
    };
    let complete =
        (0..proof.inputs.len()).all(|i| signed(&proof, i)) && forfeits.iter().all(|f| signed(f, 0));
    if !complete {
        return Err(bad("signatures missing".into()));
    }
    let ch = &pending.challenge;
    let assets: Vec<JobAsset> = ch
        .assets
        .iter()
        .map(|a| JobAsset {
            asset_id: a.asset_id.clone(),
            amount: a.amount,
        })
        .collect();
    Ok(RoundJob {
        job_id: ch.renewal_id.clone(),
        kind: if ch.recovery {
            JobKind::Recovery
        } else {
            JobKind::DelegatedRenewal
        },
        inputs: vec![JobInput::Delegated {
            vtxo: ch.vtxo,
            owner: ch.owner,
            sats: Sats::new(ch.sats),
            assets: assets.clone(),
        }],
        outputs: vec![JobOutput {
            owner: ch.owner,
            sats: Sats::new(ch.sats - ch.fee),
            assets,
        }],
        delegation: Some(Delegation {
            intent_proof: proof,
            intent_message: ch.intent_message.clone(),
            forfeit_psbts: forfeits,
            delegate_cosigner_pk: pending.cosigner,
        }),
        not_before: UnixTime(ch.valid_at),
    })
}

fn leaf_hash_of(psbt: &Psbt, index: usize) -> Result<taproot::TapLeafHash, RenewalError> {
    let (_, (leaf, version)) = psbt
        .inputs
        .get(index)
        .and_then(|i| i.tap_scripts.first_key_value())
        .ok_or_else(|| RenewalError::Answer(format!("input {index} has no leaf")))?;
    Ok(taproot::TapLeafHash::from_script(leaf, *version))
}

fn verify(
    psbt: &Psbt,
    index: usize,
    key: &bitcoin::XOnlyPublicKey,
    sig: &schnorr::Signature,
    ty: TapSighashType,
) -> Result<(), RenewalError> {
    let bad = |m: String| RenewalError::Answer(m);
    let prevouts: Vec<TxOut> = psbt
        .inputs
        .iter()
        .map(|i| i.witness_utxo.clone())
        .collect::<Option<_>>()
        .ok_or_else(|| bad("a prevout is missing".into()))?;
    let leaf_hash = leaf_hash_of(psbt, index)?;
    let sighash = SighashCache::new(&psbt.unsigned_tx)
        .taproot_script_spend_signature_hash(index, &Prevouts::All(&prevouts), leaf_hash, ty)
        .map_err(|e| bad(e.to_string()))?;
    Secp256k1::verification_only()
        .verify_schnorr(sig, &Message::from_digest(sighash.to_byte_array()), key)
        .map_err(|_| bad(format!("input {index}: invalid signature")))
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;
