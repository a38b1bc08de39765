//! Ark transactions the relay makes alone: one of its own inventory VTXOs
//! pays a user a new VTXO carrying freshly issued colour (a lift's gBTC, a
//! failed land's refund), and the rest returns to the relay as change.
//!
//! Every input is the relay's, so the relay signs the ark tx and the
//! checkpoints itself and can always recover a lost `SubmitTx` answer with a
//! `GetPendingTx` proof over its own inputs. The caller persists [`IssueTx`]
//! after [`Issuer::prepare`] and after [`Issuer::submit`], so a crash resumes
//! the very same transaction instead of building a second one.

use std::str::FromStr;
use std::sync::Arc;

use ark_relay_ark::{
    build_offchain_tx, is_fully_signed, sign_psbt, verify_signatures, Output, ServerInfo, VtxoInput,
};
use ark_relay_core::backends::ark::{ArkServer, IntentProof, SubmittedTx};
use ark_relay_core::{
    Clock, Colour, CommitOutcome, DynStore, ErrorCode, L2Transaction, LedgerError, PubKey, Sats,
    SessionId, StoreError, Vtxo, VtxoId,
};
use ark_relay_protocol::Rejection;
use bitcoin::secp256k1::Keypair;
use bitcoin::{Psbt, Txid};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

/// Free inventory VTXOs looked at per attempt.
const WINDOW: u32 = 32;

/// Why an issuing step did not finish.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// Try again later (a back end or the database is unavailable).
    #[error("transient: {0}")]
    Transient(String),
    /// It can never succeed as asked (no inventory, arkd refused).
    #[error("rejected: {0}")]
    Rejected(Rejection),
    /// A bug or corrupt stored state.
    #[error("fatal: {0}")]
    Fatal(String),
}

fn fatal(e: impl std::fmt::Display) -> IssueError {
    IssueError::Fatal(e.to_string())
}

fn transient(e: impl std::fmt::Display) -> IssueError {
    IssueError::Transient(e.to_string())
}

/// One output of an issuing transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueOutput {
    /// Owner.
    pub owner: PubKey,
    /// Carrier sats.
    pub sats: Sats,
    /// Colour (the issued colour on the user's output).
    pub colour: Option<Colour>,
}

/// A relay-made ark transaction, persisted by the caller between steps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssueTx {
    /// The relay's inventory inputs.
    pub inputs: Vec<Vtxo>,
    /// The user's output first, then the relay's change (if any).
    pub outputs: Vec<IssueOutput>,
    /// The colour issued (on the user's output).
    pub issued: Colour,
    /// Base64 ark tx PSBT (relay-signed; server-signed once submitted).
    pub ark_tx: String,
    /// Base64 checkpoint PSBTs (fully signed once submitted).
    pub checkpoints: Vec<String>,
    /// The ark txid.
    pub ark_txid: Txid,
    /// Whether `SubmitTx` succeeded and the checkpoints are fully signed.
    pub submitted: bool,
}

impl IssueTx {
    /// The user's new VTXO.
    pub fn user_vtxo(&self) -> VtxoId {
        VtxoId::new(self.ark_txid, 0)
    }
}

fn psbt(s: &str) -> Result<Psbt, IssueError> {
    Psbt::from_str(s).map_err(|e| fatal(format!("stored PSBT: {e}")))
}

/// Makes relay-signed issuing transactions against arkd.
pub struct Issuer {
    store: DynStore,
    ark: Arc<dyn ArkServer>,
    keypair: Keypair,
    relay: PubKey,
    clock: Arc<dyn Clock>,
    server: OnceCell<ServerInfo>,
}

impl Issuer {
    /// An issuer for the relay key `keypair`.
    pub fn new(
        store: DynStore,
        ark: Arc<dyn ArkServer>,
        keypair: Keypair,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let relay = PubKey::from_x_only(keypair.x_only_public_key().0);
        Self {
            store,
            ark,
            keypair,
            relay,
            clock,
            server: OnceCell::new(),
        }
    }

    /// The Ark server's parameters (fetched once).
    pub async fn server_info(&self) -> Result<&ServerInfo, IssueError> {
        self.server
            .get_or_try_init(|| async {
                crate::server::fetch(self.ark.as_ref())
                    .await
                    .map_err(|e| match e {
                        crate::handlers::HandlerError::Fatal(m) => IssueError::Fatal(m),
                        other => IssueError::Transient(other.to_string()),
                    })
            })
            .await
    }

    /// Picks and locks (under `lock`) an inventory VTXO, builds the
    /// transaction paying `to` a dust-carrier VTXO coloured `colour`, and
    /// signs the relay's inputs. Persist the result before [`Issuer::submit`].
    pub async fn prepare(
        &self,
        lock: &SessionId,
        to: PubKey,
        colour: Colour,
    ) -> Result<IssueTx, IssueError> {
        let server = self.server_info().await?.clone();
        let dust = server.dust().get();
        // A crashed earlier attempt may hold locks under the same id.
        self.store.release_locks(lock).await.map_err(transient)?;
        let mut offset = u32::from(lock.as_bytes()[0]);
        for _ in 0..8 {
            let mut free = self
                .store
                .free_inventory(&self.relay, offset % 256, WINDOW)
                .await
                .map_err(transient)?;
            if free.is_empty() {
                free = self
                    .store
                    .free_inventory(&self.relay, 0, WINDOW)
                    .await
                    .map_err(transient)?;
            }
            let Some(input) = free.into_iter().find(|v| v.sats.get() >= dust) else {
                return Err(IssueError::Rejected(Rejection::new(
                    ErrorCode::BackendUnavailable,
                    "the relay's VTXO inventory is empty; try again later",
                )));
            };
            match self
                .store
                .lock_vtxos(&[input.id], lock, self.clock.now())
                .await
            {
                Ok(()) => return self.build(&server, input, to, colour),
                Err(StoreError::Ledger(LedgerError::Locked { .. }))
                | Err(StoreError::Ledger(LedgerError::AlreadySpent(_))) => {
                    offset = offset.wrapping_add(37);
                }
                Err(e) => return Err(transient(e)),
            }
        }
        Err(IssueError::Transient(
            "every inventory VTXO tried was taken by another session".into(),
        ))
    }

    fn build(
        &self,
        server: &ServerInfo,
        input: Vtxo,
        to: PubKey,
        colour: Colour,
    ) -> Result<IssueTx, IssueError> {
        let dust = server.dust().get();
        let total = input.sats.get();
        let change = total.saturating_sub(dust);
        let mut outputs = vec![IssueOutput {
            owner: to,
            sats: Sats::new(if change >= dust { dust } else { total }),
            colour: Some(colour),
        }];
        if change >= dust {
            outputs.push(IssueOutput {
                owner: self.relay,
                sats: Sats::new(change),
                colour: None,
            });
        }
        let vin = [VtxoInput::from_vtxo(&input, server).map_err(fatal)?];
        let vout: Vec<Output> = outputs
            .iter()
            .map(|o| Output::Vtxo {
                owner: o.owner,
                sats: o.sats,
            })
            .collect();
        let mut tx = build_offchain_tx(server, &vin, &vout).map_err(fatal)?;
        sign_psbt(&mut tx.ark_tx, &self.keypair).map_err(fatal)?;
        tracing::info!(target: "audit", op = "sign_ark_tx", ark_txid = %tx.ark_tx.unsigned_tx.compute_txid(), signer = %self.relay, inputs = 1, "relay signed its own inventory input");
        Ok(IssueTx {
            inputs: vec![input],
            outputs,
            issued: colour,
            ark_txid: tx.ark_tx.unsigned_tx.compute_txid(),
            ark_tx: tx.ark_tx.to_string(),
            checkpoints: tx.checkpoints.iter().map(|p| p.to_string()).collect(),
            submitted: false,
        })
    }

    /// Submits (or recovers the pending submission of) the transaction and
    /// signs the relay's checkpoints. Persist the result before [`Issuer::finalize`].
    pub async fn submit(&self, mut tx: IssueTx) -> Result<IssueTx, IssueError> {
        if tx.submitted {
            return Ok(tx);
        }
        let ark_tx = psbt(&tx.ark_tx)?;
        let checkpoints: Vec<Psbt> = tx
            .checkpoints
            .iter()
            .map(|c| psbt(c))
            .collect::<Result<_, _>>()?;
        let submitted = match self.pending(&tx).await? {
            Some(p) => p,
            None => match self.ark.submit_tx(&ark_tx, &checkpoints).await {
                Ok(s) => s,
                Err(e) if e.is_transient() => {
                    return Err(transient(format!("arkd SubmitTx: {e}")));
                }
                Err(e) => {
                    return Err(IssueError::Rejected(Rejection::new(
                        e.code(),
                        format!(
                            "Ark server: {}",
                            e.rejection().map(|r| r.name()).unwrap_or("rejected")
                        ),
                    )));
                }
            },
        };
        if submitted.ark_txid != tx.ark_txid {
            return Err(fatal(format!(
                "arkd answered for {} instead of {}",
                submitted.ark_txid, tx.ark_txid
            )));
        }
        verify_signatures(&submitted.final_ark_tx)
            .map_err(|e| fatal(format!("server ark tx signature: {e}")))?;
        let mut signed = Vec::with_capacity(checkpoints.len());
        for c in &checkpoints {
            let txid = c.unsigned_tx.compute_txid();
            let mut p = submitted
                .signed_checkpoint_txs
                .iter()
                .find(|p| p.unsigned_tx.compute_txid() == txid)
                .cloned()
                .ok_or_else(|| fatal(format!("arkd returned no checkpoint {txid}")))?;
            verify_signatures(&p).map_err(|e| fatal(format!("server checkpoint: {e}")))?;
            sign_psbt(&mut p, &self.keypair).map_err(fatal)?;
            tracing::info!(target: "audit", op = "sign_checkpoint", checkpoint_txid = %txid, ark_txid = %tx.ark_txid, signer = %self.relay, "relay signed its checkpoint");
            if !is_fully_signed(&p).map_err(fatal)? {
                return Err(fatal(format!("checkpoint {txid} is not fully signed")));
            }
            signed.push(p);
        }
        tx.ark_tx = submitted.final_ark_tx.to_string();
        tx.checkpoints = signed.iter().map(|p| p.to_string()).collect();
        tx.submitted = true;
        Ok(tx)
    }

    async fn pending(&self, tx: &IssueTx) -> Result<Option<SubmittedTx>, IssueError> {
        let server = self.server_info().await?;
        let own: Vec<VtxoInput> = tx
            .inputs
            .iter()
            .map(|v| VtxoInput::from_vtxo(v, server))
            .collect::<Result<_, _>>()
            .map_err(fatal)?;
        let expire = u64::try_from(self.clock.now().plus_secs(300).0).unwrap_or(u64::MAX);
        let (proof, message) =
            ark_relay_ark::pending_tx_proof(&own, &self.keypair, expire).map_err(fatal)?;
        match self
            .ark
            .get_pending_tx(&IntentProof { proof, message })
            .await
        {
            Ok(all) => Ok(all.into_iter().find(|p| p.ark_txid == tx.ark_txid)),
            Err(e) if e.is_transient() => Err(transient(format!("arkd GetPendingTx: {e}"))),
            Err(_) => Ok(None),
        }
    }

    /// Finalizes at arkd (idempotent) and commits the ledger (idempotent by
    /// ark txid), issuing the colour. `kind` names the operation (`lift`, `refund`).
    pub async fn finalize(
        &self,
        tx: &IssueTx,
        lock: &SessionId,
        kind: &str,
    ) -> Result<CommitOutcome, IssueError> {
        if !tx.submitted {
            return Err(fatal("finalizing an issue that was never submitted"));
        }
        let checkpoints: Vec<Psbt> = tx
            .checkpoints
            .iter()
            .map(|c| psbt(c))
            .collect::<Result<_, _>>()?;
        match self.ark.finalize_tx(tx.ark_txid, &checkpoints).await {
            Ok(()) => {}
            Err(e) if e.is_transient() => return Err(transient(format!("arkd FinalizeTx: {e}"))),
            Err(e) => return Err(fatal(format!("arkd refused FinalizeTx: {e}"))),
        }
        let server = self.server_info().await?;
        let outputs = crate::server::new_vtxos(
            server,
            &self.relay,
            tx.ark_txid,
            tx.outputs.iter().map(|o| (o.owner, o.sats, o.colour)),
            &tx.inputs,
        );
        let l2 = L2Transaction {
            ark_txid: tx.ark_txid,
            kind: kind.to_owned(),
            session: Some(*lock),
            inputs: tx.inputs.iter().map(|v| v.id).collect(),
            outputs,
            issued: vec![tx.issued],
            burned: vec![],
            finalized_at: self.clock.now(),
        };
        match self.store.commit_transaction(&l2).await {
            Ok(o) => Ok(o),
            Err(e @ StoreError::Ledger(_)) => Err(fatal(format!(
                "ledger refused finalized ark tx {}: {e}",
                tx.ark_txid
            ))),
            Err(e) => Err(transient(e)),
        }
    }

    /// Releases the locks of an issue that will never be submitted.
    pub async fn abandon(&self, lock: &SessionId) -> Result<(), IssueError> {
        self.store.release_locks(lock).await.map_err(transient)?;
        Ok(())
    }
}
