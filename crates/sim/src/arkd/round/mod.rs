//! Batch rounds of the arkd simulator, as arkd runs them
//! (`internal/core/application/service.go`): the intent queue, the round in
//! progress (confirmation → tree nonces → tree signatures → forfeits and
//! boarding signatures → commitment tx), and the batches it has made (for
//! sweeping and the indexer). The state here is plain data; the async phase
//! timing lives in [`driver`], the checks of intents in [`intent`], the trees
//! in [`tree`], MuSig2 and commitment assembly in [`session`].

pub mod assets;
pub mod driver;
pub mod fees;
pub mod forfeit;
pub mod intent;
pub mod session;
pub mod tree;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bitcoin::secp256k1::PublicKey;
use bitcoin::{OutPoint, Psbt, TxOut, Txid};

use ark_relay_ark::RelativeLocktime;

use intent::ProvenInput;

/// Round parameters.
#[derive(Debug, Clone)]
pub struct RoundConfig {
    /// How long intents accumulate after the first one is queued before a
    /// round starts (arkd: session_duration / 6). [`crate::ArkdSim::start_round`]
    /// skips the wait.
    pub registration: Duration,
    /// How long each later phase (confirmation, nonces, signatures, forfeits)
    /// waits for participants before the round fails.
    pub phase_timeout: Duration,
    /// The batch expiry (`vtxo_tree_expiry`): seconds (multiple of 512) or blocks.
    pub vtxo_tree_expiry: RelativeLocktime,
    /// At most this many intents per round (arkd `round_max_participants_count`).
    pub max_intents: usize,
    /// Seconds a client's clock may run ahead of the simulator's chain clock
    /// when it stamps `valid_at`.
    pub clock_skew_secs: i64,
    /// Heartbeat period of event streams (below ark-client's 30 s timeout).
    pub heartbeat: Duration,
    /// The intent fee programs (`GetInfo.fees`; empty = every intent is free).
    pub fees: fees::FeePrograms,
}

impl Default for RoundConfig {
    fn default() -> Self {
        Self {
            registration: Duration::from_millis(500),
            phase_timeout: Duration::from_secs(10),
            // 7 days rounded up to a multiple of 512 s.
            vtxo_tree_expiry: RelativeLocktime::seconds(605_184)
                .unwrap_or(RelativeLocktime::blocks(1008)),
            max_intents: 128,
            clock_skew_secs: 5,
            heartbeat: Duration::from_secs(5),
            fees: fees::FeePrograms::default(),
        }
    }
}

/// A registered intent.
#[derive(Debug, Clone)]
pub struct QueuedIntent {
    /// The UUID handed to the client.
    pub id: String,
    /// Checked inputs.
    pub inputs: Vec<ProvenInput>,
    /// Outputs that become VTXOs.
    pub offchain: Vec<TxOut>,
    /// Outputs that leave on chain (collaborative exit).
    pub onchain: Vec<TxOut>,
    /// MuSig2 keys of the intent's leaf.
    pub cosigners: Vec<PublicKey>,
    /// The leaf packet and the new VTXOs' assets (from the proof's
    /// preservation packet, [`assets`]).
    pub assets: assets::IntentAssets,
}

impl QueuedIntent {
    /// `hex(sha256(utf8(id)))`, the hash `batch_started` lists.
    pub fn hash_id(&self) -> String {
        use bitcoin::hashes::{sha256, Hash};
        hex::encode(sha256::Hash::hash(self.id.as_bytes()).to_byte_array())
    }
}

/// Where the round in progress stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for `ConfirmRegistration`.
    Confirmation,
    /// Waiting for `SubmitTreeNonces`.
    Nonces,
    /// Waiting for `SubmitTreeSignatures`.
    Signatures,
    /// Waiting for `SubmitSignedForfeitTxs`.
    Forfeits,
}

/// The round in progress.
pub struct Active {
    /// Round id (UUID).
    pub id: String,
    /// Phase.
    pub phase: Phase,
    /// Intents selected for the round.
    pub intents: Vec<QueuedIntent>,
    /// Ids of the intents that confirmed.
    pub confirmed: HashSet<String>,
    /// The batch being built, once confirmation is over.
    pub batch: Option<session::Batch>,
    /// Set when a participant's submission made the round fail.
    pub failure: Option<String>,
}

/// A batch that was finalized.
#[derive(Debug, Clone)]
pub struct BatchRecord {
    /// The commitment tx.
    pub commitment: Psbt,
    /// Its txid.
    pub txid: Txid,
    /// The VTXO tree (empty if no offchain outputs).
    pub vtxo_tree: tree::Tree,
    /// The connector tree.
    pub connector_tree: tree::Tree,
    /// The forfeit txs received.
    pub forfeits: Vec<Psbt>,
    /// When its VTXOs expire (chain clock, unix s).
    pub expires_at: i64,
    /// Whether the batch output was swept.
    pub swept: bool,
    /// The sweep tx, once swept.
    pub sweep_txid: Option<Txid>,
}

/// Everything the simulator knows about rounds.
#[derive(Default)]
pub struct Rounds {
    /// Intents waiting for a round, in registration order.
    pub queue: Vec<QueuedIntent>,
    /// The round in progress.
    pub active: Option<Active>,
    /// Finalized batches, by commitment txid.
    pub batches: HashMap<Txid, BatchRecord>,
    /// Rounds that failed: (round id, reason).
    pub failed: Vec<(String, String)>,
    /// The operator wallet's UTXOs (key-path P2TR of the operator key).
    pub operator_utxos: Vec<(OutPoint, TxOut)>,
}

impl Rounds {
    /// Whether `outpoint` is an input of a queued intent or of the round in progress.
    pub fn holds(&self, outpoint: &OutPoint) -> bool {
        self.queue
            .iter()
            .chain(self.active.iter().flat_map(|a| a.intents.iter()))
            .any(|i| i.inputs.iter().any(|x| x.outpoint == *outpoint))
    }

    /// Removes queued intents spending any of `outpoints`; how many.
    pub fn delete_spending(&mut self, outpoints: &[OutPoint]) -> usize {
        let before = self.queue.len();
        self.queue
            .retain(|i| !i.inputs.iter().any(|x| outpoints.contains(&x.outpoint)));
        before - self.queue.len()
    }
}
