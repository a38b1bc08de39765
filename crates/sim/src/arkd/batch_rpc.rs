//! The batch RPCs of the arkd simulator's `ArkService` (RegisterIntent,
//! EstimateIntentFee, DeleteIntent, ConfirmRegistration, SubmitTreeNonces,
//! SubmitTreeSignatures, SubmitSignedForfeitTxs, GetEventStream,
//! UpdateStreamTopics): decoding, arkd's error names, and hand-off to the
//! round state ([`super::round`]).

use std::collections::BTreeMap;

use bitcoin::secp256k1::PublicKey;
use bitcoin::{Amount, OutPoint, TxOut};
use tonic::{Response, Status};

use ark_relay_proto::ark::v1 as pb;

use super::events::EventStream;
use super::round::assets::{self as round_assets, IntentAssets};
use super::round::fees::{self, FeeInput};
use super::round::intent::{self, Known, Message};
use super::round::{Phase, QueuedIntent};
use super::state::{code, SimError};
use super::{decode_psbt, now, status, ArkdSim, VtxoState};

fn invalid(name: &str, msg: impl Into<String>) -> Status {
    status(&SimError::new(code::INVALID_ARGUMENT, name, msg))
}

fn parse_key(s: &str) -> Result<PublicKey, Status> {
    s.parse::<PublicKey>()
        .map_err(|e| invalid("INVALID_ARGUMENT", format!("invalid pubkey {s}: {e}")))
}

impl ArkdSim {
    /// What the server knows of a proof input (arkd's `RegisterIntent` input
    /// classification), or arkd's refusal.
    fn classify(&self, outpoint: &OutPoint, register: bool) -> Result<Known, SimError> {
        if register && self.rounds_holds(outpoint) {
            return Err(SimError::new(
                code::ALREADY_EXISTS,
                "VTXO_ALREADY_REGISTERED",
                format!("duplicated input, {outpoint} already registered by another intent"),
            ));
        }
        let chain_now = self.inner.chain.now();
        if let Some(v) = self.state().vtxos.get(outpoint) {
            if v.state != VtxoState::Spendable {
                return Err(SimError::new(
                    code::INVALID_ARGUMENT,
                    "VTXO_ALREADY_SPENT",
                    format!("vtxo {outpoint} already spent"),
                ));
            }
            let out = TxOut {
                value: Amount::from_sat(v.amount),
                script_pubkey: v.script.clone(),
            };
            // Swept or expired VTXOs need no forfeit (arkd `RequiresForfeit`).
            return Ok(if v.swept || v.expires_at <= chain_now {
                Known::Recoverable(out)
            } else {
                Known::Vtxo(out)
            });
        }
        match self.inner.chain.output(outpoint) {
            None => Err(SimError::new(
                code::NOT_FOUND,
                "VTXO_NOT_FOUND",
                format!("{outpoint} is neither a vtxo nor an on-chain output"),
            )),
            Some(u) if u.spent_by.is_some() => Err(SimError::new(
                code::INVALID_ARGUMENT,
                "VTXO_ALREADY_SPENT",
                format!("boarding output {outpoint} already spent"),
            )),
            Some(u) if u.confirmed_height.is_none() => Err(SimError::new(
                code::INVALID_ARGUMENT,
                "INVALID_PSBT_INPUT",
                format!("boarding output {outpoint} is not confirmed"),
            )),
            Some(u) => Ok(Known::Boarding(u.txout)),
        }
    }

    /// arkd's time-range check on the simulator's clocks: `valid_at`
    /// against the chain clock (the one that stamps VTXOs and that time
    /// travel moves), `expire_at` against the host clock too, since clients
    /// that cannot see the chain clock (ark-client) stamp their messages
    /// with the host's: an intent is in range if it is at some instant
    /// between the two.
    fn check_time_range(&self, message: &Message) -> Result<(), Status> {
        intent::check_time_range(
            message,
            now(),
            self.inner.chain.now(),
            self.inner.round_config.clock_skew_secs,
        )
        .map_err(|e| status(&e))
    }

    /// The least fee arkd's programs ask of an intent with these inputs and
    /// outputs ([`fees::intent_fee`]; a VTXO's `birth`/`expiry` are its
    /// `created_at`/`expires_at`).
    fn required_fee(
        &self,
        inputs: &[(OutPoint, Known)],
        offchain: &[TxOut],
        onchain: &[TxOut],
    ) -> Result<u64, Status> {
        let programs = &self.inner.round_config.fees;
        if programs.is_free() {
            return Ok(0);
        }
        let fee_inputs: Vec<FeeInput> = {
            let state = self.state();
            inputs
                .iter()
                .map(|(outpoint, known)| match known {
                    Known::Boarding(o) => FeeInput::Onchain {
                        amount: o.value.to_sat(),
                    },
                    Known::Vtxo(o) | Known::Recoverable(o) => {
                        let v = state.vtxos.get(outpoint);
                        FeeInput::Offchain {
                            amount: o.value.to_sat(),
                            birth: v.map_or(0, |v| v.created_at),
                            expiry: v.map_or(0, |v| v.expires_at),
                            recoverable: matches!(known, Known::Recoverable(_)),
                        }
                    }
                })
                .collect()
        };
        fees::intent_fee(programs, &fee_inputs, offchain, onchain).map_err(|e| status(&e))
    }

    fn rounds_holds(&self, outpoint: &OutPoint) -> bool {
        self.with_rounds(|r| r.holds(outpoint))
    }

    /// Decodes and checks an intent (proof + message) of `kind`.
    fn check_intent(
        &self,
        intent: Option<pb::Intent>,
        kinds: &[&str],
        register: bool,
    ) -> Result<(Message, intent::Proven, bitcoin::Psbt), Status> {
        let intent = intent.ok_or_else(|| invalid("INVALID_INTENT_PROOF", "missing intent"))?;
        let message = intent::parse_message(&intent.message).map_err(|e| status(&e))?;
        if !kinds.contains(&message.kind.as_str()) {
            return Err(invalid(
                "INVALID_INTENT_MESSAGE",
                format!("unexpected intent message type {}", message.kind),
            ));
        }
        self.check_time_range(&message)?;
        let proof = decode_psbt(&intent.proof)
            .map_err(|_| invalid("INVALID_INTENT_PSBT", "proof is not a base64 PSBT"))?;
        let proven = intent::verify_proof(
            &self.inner.server,
            &proof,
            &intent.message,
            &message,
            self.inner.server.dust().get(),
            register,
            |o| self.classify(o, register),
        )
        .map_err(|e| status(&e))?;
        Ok((message, proven, proof))
    }

    /// arkd's asset checks of a registered intent: its inputs' assets (by
    /// proof input index) against the proof's preservation packet.
    fn check_intent_assets(
        &self,
        proof: &bitcoin::Psbt,
        proven: &intent::Proven,
    ) -> Result<IntentAssets, Status> {
        let state = self.state();
        let mut held = BTreeMap::new();
        for (i, input) in proven.inputs.iter().enumerate() {
            let assets = state
                .vtxos
                .get(&input.outpoint)
                .map(|v| v.assets.clone())
                .unwrap_or_default();
            if let (Ok(vin), false) = (u16::try_from(i + 1), assets.is_empty()) {
                held.insert(vin, assets);
            }
        }
        round_assets::check_intent(&proof.unsigned_tx, &held, &state.asset_table)
            .map_err(|e| status(&e))
    }

    pub(crate) async fn rpc_register_intent(
        &self,
        req: pb::RegisterIntentRequest,
    ) -> Result<Response<pb::RegisterIntentResponse>, Status> {
        self.fault("RegisterIntent")?;
        let (message, proven, proof) = self.check_intent(req.intent, &["register"], true)?;
        let has_boarding = proven
            .inputs
            .iter()
            .any(|i| matches!(i.known, Known::Boarding(_)));
        if has_boarding && !proven.onchain.is_empty() {
            return Err(invalid(
                "INVALID_INTENT_PSBT",
                "cannot include onchain inputs and outputs",
            ));
        }
        if !proven.offchain.is_empty() && message.cosigners.is_empty() {
            return Err(invalid(
                "INVALID_INTENT_MESSAGE",
                "cosigners_public_keys required for offchain outputs",
            ));
        }
        if message
            .cosigners
            .contains(&self.inner.keys.tree_key.public_key())
        {
            return Err(invalid(
                "INVALID_INTENT_MESSAGE",
                "the operator's key cannot be a cosigner",
            ));
        }
        let known: Vec<(OutPoint, Known)> = proven
            .inputs
            .iter()
            .map(|i| (i.outpoint, i.known.clone()))
            .collect();
        let required = self.required_fee(&known, &proven.offchain, &proven.onchain)?;
        fees::check_fee(proven.fee, required).map_err(|e| status(&e))?;
        let assets = self.check_intent_assets(&proof, &proven)?;
        let id = uuid::Uuid::new_v4().to_string();
        let queued = QueuedIntent {
            id: id.clone(),
            inputs: proven.inputs,
            offchain: proven.offchain,
            onchain: proven.onchain,
            cosigners: message.cosigners,
            assets,
        };
        // Re-check duplicates under the lock (two registrations may race).
        self.with_rounds(|r| {
            if let Some(dup) = queued.inputs.iter().find(|i| r.holds(&i.outpoint)) {
                return Err(status(&SimError::new(
                    code::ALREADY_EXISTS,
                    "VTXO_ALREADY_REGISTERED",
                    format!(
                        "duplicated input, {} already registered by another intent",
                        dup.outpoint
                    ),
                )));
            }
            r.queue.push(queued);
            Ok(())
        })?;
        tracing::debug!(intent = %id, "intent registered");
        Ok(Response::new(pb::RegisterIntentResponse { intent_id: id }))
    }

    pub(crate) async fn rpc_estimate_intent_fee(
        &self,
        req: pb::EstimateIntentFeeRequest,
    ) -> Result<Response<pb::EstimateIntentFeeResponse>, Status> {
        self.fault("EstimateIntentFee")?;
        let intent = req
            .intent
            .ok_or_else(|| invalid("INVALID_INTENT_PROOF", "missing intent"))?;
        let message = intent::parse_message(&intent.message).map_err(|e| status(&e))?;
        if message.kind != "estimate-intent-fee" && message.kind != "register" {
            return Err(invalid(
                "INVALID_INTENT_MESSAGE",
                format!("unexpected intent message type {}", message.kind),
            ));
        }
        self.check_time_range(&message)?;
        let proof = decode_psbt(&intent.proof)
            .map_err(|_| invalid("INVALID_INTENT_PSBT", "proof is not a base64 PSBT"))?;
        // No signature check; inputs classified as RegisterIntent does; every
        // output not listed as onchain counts as offchain (an OP_RETURN
        // extension output included, as arkd's EstimateIntentFee counts it).
        let tx = &proof.unsigned_tx;
        let mut inputs = Vec::new();
        for txin in tx.input.iter().skip(1) {
            let known = self
                .classify(&txin.previous_output, false)
                .map_err(|e| status(&e))?;
            inputs.push((txin.previous_output, known));
        }
        let (mut offchain, mut onchain) = (Vec::new(), Vec::new());
        for (i, out) in tx.output.iter().enumerate() {
            if message.onchain_output_indexes.contains(&i) {
                onchain.push(out.clone());
            } else {
                offchain.push(out.clone());
            }
        }
        let fee = self.required_fee(&inputs, &offchain, &onchain)?;
        Ok(Response::new(pb::EstimateIntentFeeResponse {
            fee: i64::try_from(fee).unwrap_or(i64::MAX),
        }))
    }

    pub(crate) async fn rpc_delete_intent(
        &self,
        req: pb::DeleteIntentRequest,
    ) -> Result<Response<pb::DeleteIntentResponse>, Status> {
        self.fault("DeleteIntent")?;
        let (_, proven, _) = self.check_intent(req.intent, &["delete"], false)?;
        let outpoints: Vec<OutPoint> = proven.inputs.iter().map(|i| i.outpoint).collect();
        let deleted = self.with_rounds(|r| r.delete_spending(&outpoints));
        if deleted == 0 {
            return Err(status(&SimError::new(
                code::NOT_FOUND,
                "INTENT_NOT_FOUND",
                "no matching intents found for intent proof",
            )));
        }
        Ok(Response::new(pb::DeleteIntentResponse {}))
    }

    pub(crate) async fn rpc_confirm_registration(
        &self,
        req: pb::ConfirmRegistrationRequest,
    ) -> Result<Response<pb::ConfirmRegistrationResponse>, Status> {
        self.fault("ConfirmRegistration")?;
        self.with_rounds(|r| {
            let active = r
                .active
                .as_mut()
                .filter(|a| a.phase == Phase::Confirmation)
                .ok_or_else(|| {
                    invalid(
                        "CONFIRMATION_SESSION_NOT_STARTED",
                        "confirmation session not started",
                    )
                })?;
            if !active.intents.iter().any(|i| i.id == req.intent_id) {
                return Err(invalid(
                    "CONFIRMATION_SESSION_NOT_STARTED",
                    format!("intent {} is not part of this batch", req.intent_id),
                ));
            }
            active.confirmed.insert(req.intent_id.clone());
            Ok(())
        })?;
        Ok(Response::new(pb::ConfirmRegistrationResponse {}))
    }

    fn with_batch<T>(
        &self,
        batch_id: &str,
        phase: Phase,
        f: impl FnOnce(&mut super::round::session::Batch) -> Result<T, SimError>,
    ) -> Result<T, Status> {
        self.with_rounds(|r| {
            let active = r
                .active
                .as_mut()
                .filter(|a| a.id == batch_id)
                .ok_or_else(|| {
                    invalid("INVALID_ARGUMENT", format!("batch {batch_id} not found"))
                })?;
            if active.phase != phase {
                return Err(invalid(
                    "INVALID_ARGUMENT",
                    format!("batch {batch_id} is not in phase {phase:?}"),
                ));
            }
            let batch = active
                .batch
                .as_mut()
                .ok_or_else(|| invalid("INVALID_ARGUMENT", "batch not built yet"))?;
            match f(batch) {
                Ok(t) => Ok(t),
                Err(e) => {
                    // An invalid signature fails the round, as in arkd.
                    if e.name == "INVALID_SIGNATURE" {
                        active.failure = Some(e.message.clone());
                    }
                    Err(status(&e))
                }
            }
        })
    }

    pub(crate) async fn rpc_submit_tree_nonces(
        &self,
        req: pb::SubmitTreeNoncesRequest,
    ) -> Result<Response<pb::SubmitTreeNoncesResponse>, Status> {
        self.fault("SubmitTreeNonces")?;
        let key = parse_key(&req.pubkey)?;
        if req.tree_nonces.is_empty() {
            return Err(invalid("INVALID_ARGUMENT", "missing tree nonces"));
        }
        self.with_batch(&req.batch_id, Phase::Nonces, |b| {
            b.add_nonces(&key, &req.tree_nonces)
        })?;
        Ok(Response::new(pb::SubmitTreeNoncesResponse {}))
    }

    pub(crate) async fn rpc_submit_tree_signatures(
        &self,
        req: pb::SubmitTreeSignaturesRequest,
    ) -> Result<Response<pb::SubmitTreeSignaturesResponse>, Status> {
        self.fault("SubmitTreeSignatures")?;
        let key = parse_key(&req.pubkey)?;
        if req.tree_signatures.is_empty() {
            return Err(invalid("INVALID_ARGUMENT", "missing tree signatures"));
        }
        self.with_batch(&req.batch_id, Phase::Signatures, |b| {
            b.add_signatures(&key, &req.tree_signatures)
        })?;
        Ok(Response::new(pb::SubmitTreeSignaturesResponse {}))
    }

    pub(crate) async fn rpc_submit_signed_forfeit_txs(
        &self,
        req: pb::SubmitSignedForfeitTxsRequest,
    ) -> Result<Response<pb::SubmitSignedForfeitTxsResponse>, Status> {
        self.fault("SubmitSignedForfeitTxs")?;
        if req.signed_forfeit_txs.is_empty() && req.signed_commitment_tx.is_empty() {
            return Err(invalid(
                "INVALID_ARGUMENT",
                "missing forfeit txs or signed commitment tx",
            ));
        }
        let forfeits = req
            .signed_forfeit_txs
            .iter()
            .map(|f| {
                decode_psbt(f).map_err(|_| invalid("INVALID_FORFEIT_TXS", "not a base64 PSBT"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let commitment = if req.signed_commitment_tx.is_empty() {
            None
        } else {
            Some(
                decode_psbt(&req.signed_commitment_tx)
                    .map_err(|_| invalid("INVALID_BOARDING_INPUT_SIG", "not a base64 PSBT"))?,
            )
        };
        let dust = self.inner.server.dust().get();
        let server = self.inner.server.clone();
        let batch_id = self
            .current_round()
            .map(|(id, _)| id)
            .ok_or_else(|| invalid("INVALID_ARGUMENT", "no batch in progress"))?;
        self.with_batch(&batch_id, Phase::Forfeits, |b| {
            b.add_forfeits(&server, &forfeits, commitment.as_ref(), dust)
        })?;
        Ok(Response::new(pb::SubmitSignedForfeitTxsResponse {}))
    }

    pub(crate) async fn rpc_get_event_stream(
        &self,
        req: pb::GetEventStreamRequest,
    ) -> Result<Response<EventStream>, Status> {
        self.fault("GetEventStream")?;
        Ok(Response::new(self.inner.broker.subscribe(&req.topics)))
    }

    pub(crate) async fn rpc_update_stream_topics(
        &self,
        req: pb::UpdateStreamTopicsRequest,
    ) -> Result<Response<pb::UpdateStreamTopicsResponse>, Status> {
        use pb::update_stream_topics_request::TopicsChange;
        let (add, remove, overwrite) = match req.topics_change {
            Some(TopicsChange::Modify(m)) => (m.add_topics, m.remove_topics, None),
            Some(TopicsChange::Overwrite(o)) => (Vec::new(), Vec::new(), Some(o.topics)),
            None => (Vec::new(), Vec::new(), None),
        };
        let all = self
            .inner
            .broker
            .update(&req.stream_id, &add, &remove, overwrite.as_deref())
            .ok_or_else(|| Status::not_found("unknown stream"))?;
        Ok(Response::new(pb::UpdateStreamTopicsResponse {
            topics_added: add,
            topics_removed: remove,
            all_topics: all,
        }))
    }
}
