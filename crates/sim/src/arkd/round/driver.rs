//! The round loop of the arkd simulator (arkd `startRound → startConfirmation
//! → startFinalization → finalizeRound`), one round at a time: it waits for
//! queued intents, gives registration a short window (or starts at once on
//! [`ArkdSim::start_round`]), then runs each phase until every participant
//! answered or the phase timeout passed. Also the sweeper: on every block it
//! sweeps the batches whose expiry the chain's clock has passed.

use std::time::Instant;

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Message, Secp256k1};
use bitcoin::sighash::{Prevouts, SighashCache};
use bitcoin::taproot::LeafVersion;
use bitcoin::{
    absolute, Amount, OutPoint, ScriptBuf, TapSighashType, Transaction, TxIn, TxOut, Witness,
};
use tracing::{debug, info, warn};

use ark_relay_proto::ark::v1 as pb;
use pb::get_event_stream_response::Event;

use super::session::Batch;
use super::tree::{self, Tree};
use super::{Active, BatchRecord, Phase, Rounds};
use crate::arkd::events::Routed;
use crate::arkd::{encode_psbt, ArkdSim};

fn everyone(event: Event) -> Routed {
    Routed {
        topics: Vec::new(),
        event,
    }
}

fn tree_events(id: &str, tree: &Tree, batch_index: i32) -> Vec<Routed> {
    tree.nodes
        .iter()
        .map(|n| Routed {
            topics: n.topics.clone(),
            event: Event::TreeTx(pb::TreeTxEvent {
                id: id.to_owned(),
                topic: n.topics.clone(),
                batch_index,
                txid: n.txid.to_string(),
                tx: encode_psbt(&n.psbt),
                children: n
                    .children
                    .iter()
                    .map(|(k, v)| (*k, v.to_string()))
                    .collect(),
            }),
        })
        .collect()
}

impl ArkdSim {
    fn rounds(&self) -> std::sync::MutexGuard<'_, Rounds> {
        self.inner.rounds.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the shared round state and wakes the round loop.
    pub(crate) fn with_rounds<T>(&self, f: impl FnOnce(&mut Rounds) -> T) -> T {
        let out = f(&mut self.rounds());
        self.inner.wake.notify_waiters();
        out
    }

    /// Starts the next round now instead of after the registration window.
    pub fn start_round(&self) {
        self.inner.trigger.notify_one();
    }

    /// Rounds that failed so far: `(round id, reason)`.
    pub fn failed_rounds(&self) -> Vec<(String, String)> {
        self.rounds().failed.clone()
    }

    /// The commitment txids of the finalized batches.
    pub fn batches(&self) -> Vec<bitcoin::Txid> {
        self.rounds().batches.keys().copied().collect()
    }

    /// The forfeit txs a finalized batch received (empty if unknown).
    pub fn batch_forfeits(&self, commitment: &bitcoin::Txid) -> Vec<bitcoin::Psbt> {
        self.rounds()
            .batches
            .get(commitment)
            .map(|b| b.forfeits.clone())
            .unwrap_or_default()
    }

    /// Waits until `cond` holds (true) or `deadline` passes (false).
    async fn wait_for(
        &self,
        deadline: Option<Instant>,
        mut cond: impl FnMut(&Rounds) -> bool,
    ) -> bool {
        loop {
            let notified = self.inner.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if cond(&self.rounds()) {
                return true;
            }
            match deadline {
                None => notified.await,
                Some(d) => {
                    if tokio::time::timeout_at(d.into(), notified).await.is_err() {
                        return cond(&self.rounds());
                    }
                }
            }
        }
    }

    /// Runs rounds forever (spawned next to the gRPC server).
    pub async fn run_rounds(self) {
        loop {
            self.run_round().await;
        }
    }

    fn fail_round(&self, reason: &str) {
        let routed = {
            let mut r = self.rounds();
            let Some(active) = r.active.take() else {
                return;
            };
            r.failed.push((active.id.clone(), reason.to_owned()));
            let topics: Vec<String> = active
                .intents
                .iter()
                .flat_map(|i| i.inputs.iter().map(|x| x.outpoint.to_string()))
                .collect();
            info!(round = %active.id, reason, "batch failed");
            Routed {
                topics,
                event: Event::BatchFailed(pb::BatchFailedEvent {
                    id: active.id,
                    reason: reason.to_owned(),
                }),
            }
        };
        self.inner.broker.publish([routed]);
    }

    fn deadline(&self) -> Option<Instant> {
        Some(Instant::now() + self.inner.round_config.phase_timeout)
    }

    fn active_failure(&self) -> Option<String> {
        self.rounds()
            .active
            .as_ref()
            .and_then(|a| a.failure.clone())
    }

    async fn run_round(&self) {
        self.wait_for(None, |r| !r.queue.is_empty()).await;
        tokio::select! {
            _ = tokio::time::sleep(self.inner.round_config.registration) => {}
            _ = self.inner.trigger.notified() => {}
        }
        // Select intents whose inputs are still unspent.
        let id = uuid::Uuid::new_v4().to_string();
        let hashes = {
            let state = self.state();
            let chain = &self.inner.chain;
            let mut r = self.rounds();
            let max = self.inner.round_config.max_intents;
            let mut selected = Vec::new();
            let mut keep = Vec::new();
            for i in std::mem::take(&mut r.queue) {
                let live = i.inputs.iter().all(|x| match state.vtxos.get(&x.outpoint) {
                    Some(v) => v.state == crate::arkd::VtxoState::Spendable,
                    None => chain.spender(&x.outpoint).is_none(),
                });
                if !live {
                    debug!(intent = %i.id, "dropping intent with spent inputs");
                } else if selected.len() < max {
                    selected.push(i);
                } else {
                    keep.push(i);
                }
            }
            r.queue = keep;
            if selected.is_empty() {
                return;
            }
            let hashes: Vec<String> = selected.iter().map(|i| i.hash_id()).collect();
            r.active = Some(Active {
                id: id.clone(),
                phase: Phase::Confirmation,
                intents: selected,
                confirmed: Default::default(),
                batch: None,
                failure: None,
            });
            hashes
        };
        info!(round = %id, intents = hashes.len(), "batch started");
        self.inner
            .broker
            .publish([everyone(Event::BatchStarted(pb::BatchStartedEvent {
                id: id.clone(),
                intent_id_hashes: hashes,
                batch_expiry: self.inner.round_config.vtxo_tree_expiry.to_server_value(),
            }))]);
        // Confirmation: unconfirmed intents go back to the queue.
        self.wait_for(self.deadline(), |r| {
            r.active
                .as_ref()
                .is_some_and(|a| a.confirmed.len() == a.intents.len())
        })
        .await;
        let built = {
            let mut r = self.rounds();
            let Some(mut active) = r.active.take() else {
                return;
            };
            let (confirmed, unconfirmed): (Vec<_>, Vec<_>) = active
                .intents
                .drain(..)
                .partition(|i| active.confirmed.contains(&i.id));
            for i in unconfirmed.into_iter().rev() {
                r.queue.insert(0, i);
            }
            if confirmed.is_empty() {
                debug!(round = %id, "no intent confirmed; round aborted");
                return;
            }
            active.intents = confirmed;
            let fee_rate = self.inner.chain.fee_rate();
            let dust = self.inner.server.dust().get();
            let wallet_script = self.inner.keys.wallet_script();
            let chain = self.inner.chain.clone();
            let utxos = &mut r.operator_utxos;
            let result = Batch::build(
                &self.inner.server,
                &self.inner.keys,
                &active.intents,
                self.inner.round_config.vtxo_tree_expiry,
                dust,
                fee_rate,
                |need| {
                    let mut picked = Vec::new();
                    let mut sum = 0u64;
                    while sum < need {
                        let Some(u) = utxos.pop() else {
                            // Regtest: the operator's wallet is refilled by the faucet.
                            let amount = need.saturating_sub(sum).max(100_000_000);
                            let outpoint =
                                chain.faucet(wallet_script.clone(), Amount::from_sat(amount));
                            picked.push((
                                outpoint,
                                TxOut {
                                    value: Amount::from_sat(amount),
                                    script_pubkey: wallet_script.clone(),
                                },
                            ));
                            sum = sum.saturating_add(amount);
                            continue;
                        };
                        sum = sum.saturating_add(u.1.value.to_sat());
                        picked.push(u);
                    }
                    picked
                },
            );
            match result {
                Ok(batch) => {
                    let events = self.tree_signing_events(&id, &batch);
                    active.phase = if batch.vtxo_tree.nodes.is_empty() {
                        Phase::Forfeits
                    } else {
                        Phase::Nonces
                    };
                    active.batch = Some(batch);
                    r.active = Some(active);
                    Ok(events)
                }
                Err(e) => {
                    r.active = Some(active);
                    Err(e.message)
                }
            }
        };
        let events = match built {
            Ok(e) => e,
            Err(reason) => return self.fail_round(&reason),
        };
        let has_tree = !events.is_empty();
        self.inner.broker.publish(events);
        let mut finalization = Vec::new();
        if has_tree {
            // Nonces.
            let ok = self
                .wait_for(self.deadline(), |r| {
                    r.active.as_ref().is_some_and(|a| {
                        a.failure.is_some()
                            || a.batch
                                .as_ref()
                                .is_some_and(|b| b.missing_nonces().is_empty())
                    })
                })
                .await;
            if let Some(f) = self.active_failure() {
                return self.fail_round(&f);
            }
            if !ok {
                return self.fail_round("signing session timed out: missing tree nonces");
            }
            let nonce_events = {
                let mut r = self.rounds();
                let Some(active) = r.active.as_mut() else {
                    return;
                };
                let Some(batch) = active.batch.as_mut() else {
                    return;
                };
                let agg = match batch.aggregate_nonces(&self.inner.keys) {
                    Ok(a) => a,
                    Err(e) => {
                        drop(r);
                        return self.fail_round(&e.message);
                    }
                };
                active.phase = Phase::Signatures;
                let mut events: Vec<Routed> = agg
                    .iter()
                    .map(|(txid, cosigners, nonces, _)| {
                        let topics: Vec<String> = cosigners.iter().map(|k| k.to_string()).collect();
                        Routed {
                            topics: topics.clone(),
                            event: Event::TreeNonces(pb::TreeNoncesEvent {
                                id: id.clone(),
                                topic: topics,
                                txid: txid.to_string(),
                                nonces: nonces.clone(),
                            }),
                        }
                    })
                    .collect();
                events.push(everyone(Event::TreeNoncesAggregated(
                    pb::TreeNoncesAggregatedEvent {
                        id: id.clone(),
                        tree_nonces: agg
                            .iter()
                            .map(|(t, _, _, a)| (t.to_string(), a.clone()))
                            .collect(),
                    },
                )));
                events
            };
            self.inner.broker.publish(nonce_events);
            // Signatures.
            let ok = self
                .wait_for(self.deadline(), |r| {
                    r.active.as_ref().is_some_and(|a| {
                        a.failure.is_some()
                            || a.batch
                                .as_ref()
                                .is_some_and(|b| b.missing_signatures().is_empty())
                    })
                })
                .await;
            if let Some(f) = self.active_failure() {
                return self.fail_round(&f);
            }
            if !ok {
                return self.fail_round("signing session timed out: missing tree signatures");
            }
            let sigs = {
                let mut r = self.rounds();
                let Some(batch) = r.active.as_mut().and_then(|a| a.batch.as_mut()) else {
                    return;
                };
                batch.aggregate_signatures()
            };
            match sigs {
                Ok(sigs) => {
                    for (txid, cosigners, sig) in sigs {
                        let topics: Vec<String> = cosigners.iter().map(|k| k.to_string()).collect();
                        finalization.push(Routed {
                            topics: topics.clone(),
                            event: Event::TreeSignature(pb::TreeSignatureEvent {
                                id: id.clone(),
                                topic: topics,
                                batch_index: 0,
                                txid: txid.to_string(),
                                signature: sig,
                            }),
                        });
                    }
                }
                Err(e) => return self.fail_round(&e.message),
            }
        }
        // Connectors and the commitment tx to sign.
        {
            let mut r = self.rounds();
            let Some(active) = r.active.as_mut() else {
                return;
            };
            active.phase = Phase::Forfeits;
            let Some(batch) = active.batch.as_ref() else {
                return;
            };
            finalization.extend(tree_events(&id, &batch.connector_tree, 1));
            finalization.push(everyone(Event::BatchFinalization(
                pb::BatchFinalizationEvent {
                    id: id.clone(),
                    commitment_tx: encode_psbt(&batch.commitment),
                },
            )));
        }
        self.inner.broker.publish(finalization);
        let ok = self
            .wait_for(self.deadline(), |r| {
                r.active.as_ref().is_some_and(|a| {
                    a.failure.is_some()
                        || a.batch.as_ref().is_some_and(|b| {
                            let (v, bo) = b.missing_forfeits();
                            v.is_empty() && bo.is_empty()
                        })
                })
            })
            .await;
        if let Some(f) = self.active_failure() {
            return self.fail_round(&f);
        }
        if !ok {
            return self.fail_round("missing forfeit transactions or boarding signatures");
        }
        self.finalize_round(&id);
    }

    fn tree_signing_events(&self, id: &str, batch: &Batch) -> Vec<Routed> {
        if batch.vtxo_tree.nodes.is_empty() {
            return Vec::new();
        }
        let mut events = tree_events(id, &batch.vtxo_tree, 0);
        events.push(everyone(Event::TreeSigningStarted(
            pb::TreeSigningStartedEvent {
                id: id.to_owned(),
                cosigners_pubkeys: batch.cosigners.iter().map(|k| k.to_string()).collect(),
                unsigned_commitment_tx: encode_psbt(&batch.commitment),
            },
        )));
        events
    }

    fn finalize_round(&self, id: &str) {
        let now = self.inner.chain.now();
        let expiry_secs = self.inner.round_config.vtxo_tree_expiry.arkd_seconds();
        let mut r = self.rounds();
        let Some(mut active) = r.active.take() else {
            return;
        };
        let Some(mut batch) = active.batch.take() else {
            return;
        };
        let tx = match batch.finalize(&self.inner.keys) {
            Ok(tx) => tx,
            Err(e) => {
                r.active = Some(active);
                drop(r);
                return self.fail_round(&e.message);
            }
        };
        let txid = tx.compute_txid();
        if let Err(e) = self.inner.chain.broadcast(tx) {
            r.active = Some(Active {
                batch: Some(batch),
                ..active
            });
            drop(r);
            return self.fail_round(&format!("commitment tx refused by the chain: {e}"));
        }
        r.operator_utxos
            .retain(|(o, _)| !batch.spent_operator_utxos.contains(o));
        if let Some((vout, out)) = batch.change.clone() {
            r.operator_utxos.push((OutPoint { txid, vout }, out));
        }
        // Every leaf output of the VTXO tree becomes a VTXO.
        let mut created = Vec::new();
        for leaf in batch.vtxo_tree.leaves() {
            for (vout, out) in leaf.psbt.unsigned_tx.output.iter().enumerate() {
                if out.value.to_sat() == 0 {
                    continue;
                }
                if let Ok(vout) = u32::try_from(vout) {
                    created.push((
                        OutPoint {
                            txid: leaf.txid,
                            vout,
                        },
                        out.clone(),
                    ));
                }
            }
        }
        let spent: Vec<(OutPoint, Option<bitcoin::Txid>)> = active
            .intents
            .iter()
            .flat_map(|i| i.inputs.iter())
            .map(|x| {
                (
                    x.outpoint,
                    batch
                        .forfeits
                        .get(&x.outpoint)
                        .map(|f| f.unsigned_tx.compute_txid()),
                )
            })
            .collect();
        let expires_at = now.saturating_add(expiry_secs);
        let (spent, created) = {
            let mut state = self.state();
            let (spent, mut created) = state.settle(&spent, txid, &created, now, expires_at);
            // Denominations from each leaf's packet, by vout (arkd
            // `getNewVtxosFromRound`).
            for v in &mut created {
                let Some(leaf) = batch.vtxo_tree.node(&v.outpoint.txid) else {
                    continue;
                };
                let assets = active
                    .intents
                    .iter()
                    .find(|i| {
                        i.assets.leaf_extension.as_ref().is_some_and(|ext| {
                            leaf.psbt.unsigned_tx.output.iter().any(|o| o == ext)
                        })
                    })
                    .and_then(|i| i.assets.outputs.get(&v.outpoint.vout));
                if let Some(assets) = assets {
                    v.assets = assets.clone();
                    if let Some(stored) = state.vtxos.get_mut(&v.outpoint) {
                        stored.assets = assets.clone();
                    }
                }
            }
            (spent, created)
        };
        r.batches.insert(
            txid,
            BatchRecord {
                commitment: batch.commitment.clone(),
                txid,
                vtxo_tree: batch.vtxo_tree.clone(),
                connector_tree: batch.connector_tree.clone(),
                forfeits: batch.forfeits.values().cloned().collect(),
                expires_at,
                swept: false,
                sweep_txid: None,
            },
        );
        drop(r);
        info!(round = %id, commitment = %txid, vtxos = created.len(), "batch finalized");
        self.inner
            .broker
            .publish([everyone(Event::BatchFinalized(pb::BatchFinalizedEvent {
                id: id.to_owned(),
                commitment_txid: txid.to_string(),
            }))]);
        self.publish_batch(txid, &batch.commitment, &spent, &created);
        self.inner.wake.notify_waiters();
    }

    /// Sweeps every batch whose expiry the chain's tip time has passed: the
    /// batch output goes back to the operator through the sweep leaf and the
    /// batch's unspent VTXOs become swept (recoverable).
    pub fn sweep_expired(&self) {
        let tip_time = self.inner.chain.tip_time();
        let due: Vec<BatchRecord> = self
            .rounds()
            .batches
            .values()
            .filter(|b| {
                !b.swept && b.expires_at <= tip_time && self.inner.chain.confirmations(&b.txid) > 0
            })
            .cloned()
            .collect();
        for b in due {
            let sweep_txid = match self.sweep_tx(&b) {
                Ok(Some(tx)) => match self.inner.chain.broadcast(tx) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        warn!(batch = %b.txid, error = %e, "sweep tx refused");
                        None
                    }
                },
                Ok(None) => None,
                Err(e) => {
                    warn!(batch = %b.txid, error = %e, "cannot build sweep tx");
                    None
                }
            };
            if let Some(rec) = self.rounds().batches.get_mut(&b.txid) {
                rec.swept = true;
                rec.sweep_txid = sweep_txid;
            }
            let swept = self.state().sweep_batch(b.txid);
            info!(batch = %b.txid, vtxos = swept.len(), "batch swept");
            self.publish_sweep(sweep_txid.unwrap_or(b.txid), &swept);
        }
    }

    fn sweep_tx(&self, b: &BatchRecord) -> Result<Option<Transaction>, String> {
        let Some(root) = b.vtxo_tree.nodes.first() else {
            return Ok(None);
        };
        let Some(prevout) = root
            .psbt
            .inputs
            .first()
            .and_then(|i| i.witness_utxo.clone())
        else {
            return Ok(None);
        };
        let expiry = self.inner.round_config.vtxo_tree_expiry;
        let sweep_key = *self.inner.server.forfeit_key();
        let agg = tree::aggregate_key(&root.cosigners).map_err(|e| e.to_string())?;
        let info =
            tree::sweep_tree(expiry, &sweep_key, agg.agg_pk_xonly).map_err(|e| e.to_string())?;
        let leaf = ark_relay_ark::script::csv_script(&sweep_key, expiry);
        let control = info
            .control_block(&(leaf.clone(), LeafVersion::TapScript))
            .ok_or("sweep leaf not in tree")?;
        let fee = self.inner.chain.fee_rate().saturating_mul(200);
        let value = prevout.value.to_sat().saturating_sub(fee);
        let mut tx = Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint {
                    txid: b.txid,
                    vout: 0,
                },
                script_sig: ScriptBuf::new(),
                sequence: expiry.to_sequence(),
                witness: Witness::new(),
            }],
            output: vec![TxOut {
                value: Amount::from_sat(value),
                script_pubkey: self.inner.keys.wallet_script(),
            }],
        };
        let leaf_hash = ark_relay_ark::script::leaf_hash(&leaf);
        let sighash = SighashCache::new(&tx)
            .taproot_script_spend_signature_hash(
                0,
                &Prevouts::All(&[prevout]),
                leaf_hash,
                TapSighashType::Default,
            )
            .map_err(|e| e.to_string())?;
        let sig = Secp256k1::new().sign_schnorr_no_aux_rand(
            &Message::from_digest(sighash.to_byte_array()),
            &self.inner.keys.signer,
        );
        tx.input[0].witness =
            Witness::from_slice(&[sig.as_ref().to_vec(), leaf.to_bytes(), control.serialize()]);
        Ok(Some(tx))
    }

    /// The round in progress: its id and phase.
    pub fn current_round(&self) -> Option<(String, Phase)> {
        self.rounds()
            .active
            .as_ref()
            .map(|a| (a.id.clone(), a.phase))
    }

    /// Ids of the queued intents.
    pub fn queued_intents(&self) -> Vec<String> {
        self.rounds().queue.iter().map(|i| i.id.clone()).collect()
    }

    /// How many `GetEventStream` streams are open.
    pub fn event_listeners(&self) -> usize {
        self.inner.broker.listener_count()
    }
}
