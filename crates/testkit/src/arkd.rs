//! [`MemoryArkd`]: a deterministic in-memory Ark server for testing the
//! ceremony's runner without sockets (the gRPC simulator in `ark-relay-sim`
//! stays the double of end-to-end tests).
//!
//! It keeps the state the ceremony depends on and checks what arkd checks
//! on that path: `SubmitTx` requires every ark tx input signed by its owner
//! (only the server's signature missing) and refuses inputs already spent or
//! held by a pending tx (`VTXO_ALREADY_SPENT`); it co-signs the ark tx and
//! the checkpoints with its own key and answers the checkpoints in reverse
//! order (arkd promises no order); `FinalizeTx` requires every checkpoint
//! fully signed and is idempotent; `GetPendingTx` returns the pending txs
//! spending an input of the proof. Faults can be injected per RPC.
//!
//! Not served (answers `UNIMPLEMENTED`): the indexer and the streams.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Mutex, PoisonError};

use ark_relay_ark::script::checkpoint_script;
use ark_relay_ark::{is_fully_signed, missing_signers, sign_psbt, RelativeLocktime, ServerInfo};
use ark_relay_core::backends::ark::{
    grpc_code, ArkInfo, ArkServer, ArkServerError, ArkTxStream, IntentProof, ServerVtxo,
    SubmittedTx, VtxoQuery,
};
use ark_relay_core::{Sats, VtxoId};
use async_trait::async_trait;
use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
use bitcoin::{Network, Psbt, Txid};

/// `UNIMPLEMENTED`.
const UNIMPLEMENTED: i32 = 12;

#[derive(Default)]
struct State {
    spent: BTreeMap<VtxoId, Txid>,
    pending: BTreeMap<Txid, SubmittedTx>,
    finalized: BTreeSet<Txid>,
    accepted: BTreeMap<Txid, u32>,
    faults: VecDeque<(&'static str, ArkServerError)>,
}

/// See the module docs.
pub struct MemoryArkd {
    signer: Keypair,
    forfeit: Keypair,
    delay: RelativeLocktime,
    checkpoint_delay: RelativeLocktime,
    state: Mutex<State>,
}

impl Default for MemoryArkd {
    fn default() -> Self {
        Self::new()
    }
}

fn keypair(byte: u8) -> Keypair {
    // Any byte below the curve order is a valid secret key.
    #[allow(clippy::expect_used)]
    let sk = SecretKey::from_slice(&[byte; 32]).expect("a fixed valid secret key");
    Keypair::from_secret_key(&Secp256k1::new(), &sk)
}

fn refused(name: &str, message: &str) -> ArkServerError {
    ArkServerError::from_status(grpc_code::UNKNOWN, Some(name), message)
}

impl MemoryArkd {
    /// A server with fixed keys (deterministic).
    pub fn new() -> Self {
        Self {
            signer: keypair(0xa1),
            forfeit: keypair(0xa2),
            delay: RelativeLocktime::Intervals512(20),
            checkpoint_delay: RelativeLocktime::Intervals512(2),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Its parameters, as the relay derives them from `GetInfo`.
    pub fn server_info(&self) -> ServerInfo {
        ServerInfo::new(
            self.signer.x_only_public_key().0,
            self.forfeit.x_only_public_key().0,
            self.delay,
            self.checkpoint_delay,
            Sats::new(330),
            Network::Regtest,
        )
    }

    /// The next call of `rpc` (`SubmitTx`, `FinalizeTx`, `GetPendingTx`) fails with `error`.
    pub fn fail_next(&self, rpc: &'static str, error: ArkServerError) {
        self.state().faults.push_back((rpc, error));
    }

    /// How many times `ark_txid` was accepted by `SubmitTx`.
    pub fn accepted(&self, ark_txid: &Txid) -> u32 {
        self.state().accepted.get(ark_txid).copied().unwrap_or(0)
    }

    /// Whether `ark_txid` is finalized.
    pub fn finalized(&self, ark_txid: &Txid) -> bool {
        self.state().finalized.contains(ark_txid)
    }

    fn fault(&self, rpc: &str) -> Result<(), ArkServerError> {
        let mut st = self.state();
        match st.faults.iter().position(|(r, _)| *r == rpc) {
            Some(i) => match st.faults.remove(i) {
                Some((_, e)) => Err(e),
                None => Ok(()),
            },
            None => Ok(()),
        }
    }
}

fn spent_outpoint(checkpoint: &Psbt) -> Option<VtxoId> {
    checkpoint
        .unsigned_tx
        .input
        .first()
        .map(|i| VtxoId::from(i.previous_output))
}

#[async_trait]
impl ArkServer for MemoryArkd {
    async fn get_info(&self) -> Result<ArkInfo, ArkServerError> {
        Ok(ArkInfo {
            version: "memory".into(),
            signer_pubkey: self.signer.public_key(),
            deprecated_signers: vec![],
            forfeit_pubkey: self.forfeit.public_key(),
            checkpoint_tapscript: checkpoint_script(
                &self.forfeit.x_only_public_key().0,
                self.checkpoint_delay,
            ),
            network: Network::Regtest,
            unilateral_exit_delay: self.delay.to_server_value(),
            dust: Sats::new(330),
            vtxo_min_amount: None,
            vtxo_max_amount: None,
            max_tx_weight: 0,
            digest: "memory".into(),
        })
    }

    async fn submit_tx(
        &self,
        ark_tx: &Psbt,
        checkpoints: &[Psbt],
    ) -> Result<SubmittedTx, ArkServerError> {
        self.fault("SubmitTx")?;
        let txid = ark_tx.unsigned_tx.compute_txid();
        let signer = self.signer.x_only_public_key().0;
        for k in 0..ark_tx.inputs.len() {
            let missing = missing_signers(ark_tx, k)
                .map_err(|e| refused("INVALID_PSBT_INPUT", &e.to_string()))?;
            if missing != vec![signer] {
                return Err(refused(
                    "INVALID_SIGNATURE",
                    "an input is not signed by its owner",
                ));
            }
        }
        let mut st = self.state();
        let inputs: Vec<VtxoId> = checkpoints.iter().filter_map(spent_outpoint).collect();
        if inputs.iter().any(|i| st.spent.contains_key(i)) {
            return Err(refused("VTXO_ALREADY_SPENT", "input already spent"));
        }
        let mut final_tx = ark_tx.clone();
        sign_psbt(&mut final_tx, &self.signer).map_err(|e| refused("INTERNAL", &e.to_string()))?;
        let mut signed = checkpoints.to_vec();
        for c in &mut signed {
            sign_psbt(c, &self.signer).map_err(|e| refused("INTERNAL", &e.to_string()))?;
        }
        signed.reverse();
        for i in inputs {
            st.spent.insert(i, txid);
        }
        *st.accepted.entry(txid).or_default() += 1;
        let sub = SubmittedTx {
            ark_txid: txid,
            final_ark_tx: final_tx,
            signed_checkpoint_txs: signed,
        };
        st.pending.insert(txid, sub.clone());
        Ok(sub)
    }

    async fn finalize_tx(
        &self,
        ark_txid: Txid,
        checkpoints: &[Psbt],
    ) -> Result<(), ArkServerError> {
        self.fault("FinalizeTx")?;
        let mut st = self.state();
        if st.finalized.contains(&ark_txid) {
            return Ok(());
        }
        if !st.pending.contains_key(&ark_txid) {
            return Err(refused("TX_NOT_FOUND", "no pending tx with this id"));
        }
        for c in checkpoints {
            if !is_fully_signed(c).unwrap_or(false) {
                return Err(refused(
                    "INVALID_SIGNATURE",
                    "a checkpoint is not fully signed",
                ));
            }
        }
        st.finalized.insert(ark_txid);
        Ok(())
    }

    async fn get_pending_tx(
        &self,
        intent: &IntentProof,
    ) -> Result<Vec<SubmittedTx>, ArkServerError> {
        self.fault("GetPendingTx")?;
        let owned: BTreeSet<VtxoId> = intent
            .proof
            .unsigned_tx
            .input
            .iter()
            .map(|i| VtxoId::from(i.previous_output))
            .collect();
        let st = self.state();
        Ok(st
            .pending
            .iter()
            .filter(|(txid, _)| !st.finalized.contains(*txid))
            .filter(|(txid, _)| {
                st.spent
                    .iter()
                    .any(|(i, t)| t == *txid && owned.contains(i))
            })
            .map(|(_, s)| s.clone())
            .collect())
    }

    async fn get_vtxos(&self, _query: &VtxoQuery) -> Result<Vec<ServerVtxo>, ArkServerError> {
        Err(ArkServerError::from_status(
            UNIMPLEMENTED,
            None,
            "not served by MemoryArkd",
        ))
    }

    async fn subscribe_transactions(&self) -> Result<ArkTxStream, ArkServerError> {
        Err(ArkServerError::from_status(
            UNIMPLEMENTED,
            None,
            "not served by MemoryArkd",
        ))
    }
}
