//! Conditional co-signing (PRD §12 scenario 7, DESIGN.md §7b,
//! `docs/protocol.md` "Conditional co-signing"): the relay's side of
//! perpetual positions.
//!
//! - **Opening** (`open_perp` in a `submit_batch`): after the batch is
//!   planned, [`lock_positions`] gives each position token output the
//!   conditional tree committed to its `open_perp` (the ceremony builds and
//!   records it; nothing else changes in the batch).
//! - **Liquidation** (a `liquidate` intent, routed here by
//!   [`crate::router::Router`]): the pure checklist ([`check`]) decides; only
//!   an approved liquidation is planned — the DEX pays the margin to the
//!   insurance fund and its fee from its own coins, the position VTXO is an
//!   extra input spent through its conditional leaf, its token burned and its
//!   carrier sats added to the insurance fund's output ([`add_position`]) —
//!   and run on the existing runner with the DEX as the only party; the relay
//!   co-signs with its key tweaked by the `open_perp` id. Every refusal is a
//!   31341 to the DEX with a code of 8001–8011; nothing is locked or moved.
//!
//! It must not know perpetuals maths beyond the signed liquidation price, and
//! must never co-sign anything the checklist did not approve.

pub mod check;

use ark_relay_ceremony::{CosignedInput, LockedOutput, OutputLock, Party, Plan, Purpose};
use ark_relay_core::{ErrorCode, LedgerError, PubKey, StoreError, Vtxo};
use ark_relay_protocol::content::{AssetRef, IntentContent, IntentType};
use ark_relay_protocol::intent::{validate_intent, ValidIntent};
use ark_relay_protocol::Rejection;

use crate::ceremony::{Ceremony, CrashPoint};
use crate::handlers::{HandlerError, JobOutcome};
use crate::ingest::InboundJob;

pub use check::{Approved, Case, ConditionalConfig};

/// Whether a 31510 event is a `liquidate` intent (a cheap look at its
/// `type`; the full validation follows in [`Ceremony::on_liquidate`]).
pub fn is_liquidation(event: &nostr::Event) -> bool {
    #[derive(serde::Deserialize)]
    struct OnlyType<'a> {
        #[serde(rename = "type", borrow)]
        intent_type: Option<&'a str>,
    }
    serde_json::from_str::<OnlyType<'_>>(&event.content)
        .ok()
        .and_then(|t| t.intent_type)
        == Some(IntentType::Liquidate.as_str())
}

/// Gives every position token output of an opening batch its conditional
/// tree: for each valid `open_perp` of the batch, the output paying its
/// author exactly one unit of the terms' position token. 3001 if a batch
/// with an `open_perp` has no such output.
pub fn lock_positions(
    mut plan: Plan,
    intents: &[ValidIntent],
    relay: &PubKey,
) -> Result<Plan, Rejection> {
    for v in intents
        .iter()
        .filter(|v| v.intent_type == IntentType::OpenPerp)
    {
        let content: IntentContent = serde_json::from_str(&v.content)
            .map_err(|e| Rejection::new(ErrorCode::Malformed, e.to_string()))?;
        let terms = content
            .perp
            .ok_or_else(|| Rejection::new(ErrorCode::InvalidPerpTerms, "open_perp without terms"))?
            .validate()?;
        let AssetRef::Id(token) = terms.position_token else {
            return Err(Rejection::new(
                ErrorCode::InvalidPerpTerms,
                "position_token must be an asset id",
            ));
        };
        let output = plan
            .outputs
            .iter()
            .enumerate()
            .position(|(i, o)| {
                o.owner == v.author
                    && o.colour
                        .is_some_and(|c| c.asset == token && c.amount.get() == 1)
                    && !plan.locks.iter().any(|l| l.output == i)
            })
            .ok_or_else(|| {
                Rejection::new(
                    ErrorCode::BatchInconsistent,
                    format!(
                        "open_perp {}: no output pays its position token",
                        v.event_id
                    ),
                )
            })?;
        plan.locks.push(LockedOutput {
            output,
            lock: OutputLock::Conditional {
                dex: terms.dex,
                relay: *relay,
                open_perp: v.event_id,
            },
        });
    }
    Ok(plan)
}

/// Adds the approved position to the DEX's one-party `plan`: the VTXO is the
/// last input of the DEX's span (before the relay's), spent through its
/// conditional leaf and co-signed; its token is burned; its carrier sats go
/// to the insurance fund's output.
pub fn add_position(mut plan: Plan, position: &Vtxo, ok: &Approved) -> Result<Plan, Rejection> {
    let span = plan
        .spans
        .first_mut()
        .ok_or_else(|| Rejection::new(ErrorCode::Malformed, "a liquidation has one party"))?;
    let at = span.first_input + span.inputs;
    span.inputs += 1;
    plan.inputs.insert(at, position.clone());
    let colour = position
        .colour
        .ok_or_else(|| Rejection::new(ErrorCode::WitnessMismatch, "position holds no token"))?;
    plan.burned.push(colour);
    let fund = plan
        .outputs
        .iter_mut()
        .find(|o| o.owner == ok.insurance_fund && !o.fee && o.party == Some(0))
        .ok_or_else(|| {
            Rejection::new(
                ErrorCode::LiquidationPayoutMismatch,
                "no output to the insurance fund",
            )
        })?;
    fund.sats = fund
        .sats
        .checked_add(position.sats)
        .ok_or_else(|| Rejection::new(ErrorCode::InvalidAmount, "sats overflow"))?;
    plan.cosign.push(CosignedInput {
        input: at,
        open_perp: ok.open_perp,
    });
    Ok(plan)
}

impl Ceremony {
    /// A `liquidate` intent: validate, verify the witness, run the checklist,
    /// then plan, lock (the position last), build with the relay's
    /// co-signature and send the DEX its step-1 challenge.
    #[tracing::instrument(skip_all, fields(intent = %inbound.event.id))]
    pub(crate) async fn on_liquidate(
        &self,
        inbound: &InboundJob,
    ) -> Result<JobOutcome, HandlerError> {
        let Some(row) = self.intent_row(inbound).await? else {
            return Ok(JobOutcome::default());
        };
        let now = self.runner.clock.now();
        let intent = match validate_intent(&inbound.event, &self.policy, now) {
            Ok(v) => v,
            Err(r) => return self.refuse_intent(&row, r).await,
        };
        let witness = match serde_json::from_str::<IntentContent>(&intent.content)
            .map_err(|e| Rejection::new(ErrorCode::Malformed, e.to_string()))
            .and_then(|c| {
                c.witness
                    .ok_or_else(|| Rejection::new(ErrorCode::MalformedWitness, "no witness"))
            })
            .and_then(|w| w.verify())
        {
            Ok(w) => w,
            Err(r) => return self.refuse_intent(&row, r).await,
        };
        let Some(&position_id) = intent.inputs.as_deref().and_then(|i| i.first()) else {
            let r = Rejection::new(ErrorCode::Malformed, "liquidate names the position VTXO");
            return self.refuse_intent(&row, r).await;
        };
        let store = &self.runner.store;
        let Some(position) = store
            .vtxo(&position_id)
            .await
            .map_err(|e| HandlerError::Transient(e.to_string()))?
        else {
            let r = Rejection::new(
                ErrorCode::UnknownVtxoOrAsset,
                format!("position {position_id} is not known"),
            );
            return self.refuse_intent(&row, r).await;
        };
        let server = self.runner.server_info().await?.clone();
        let case = Case {
            intent: &intent,
            witness: &witness,
            position: &position,
            session: row.id,
            server: &server,
            relay: &self.runner.relay,
            now,
            max_price_age_secs: self.conditional.max_price_age_secs,
        };
        let approved = match check::check(&case) {
            Ok(a) => a,
            Err(r) => {
                tracing::info!(code = r.code.code(), position = %position_id, "liquidation refused");
                return self.refuse_intent(&row, r).await;
            }
        };
        // The DEX's payments (the margin to the insurance fund, its fee) from its own coins.
        let payments = match self.payments(&intent, false).await {
            Ok(p) => p,
            Err(r) => return self.refuse_intent(&row, r).await,
        };
        let summary = format!(
            "liquidate position {} (open_perp {}): pay {} to the insurance fund",
            position_id, approved.open_perp, witness.terms.margin
        );
        let party = match ark_relay_ceremony::PartyRequest::paying(intent.author, payments, None) {
            Ok(p) => p,
            Err(r) => return self.refuse_intent(&row, r).await,
        };
        let plan = match self
            .runner
            .plan_and_lock(&row.id, std::slice::from_ref(&party), &[], &|_| Ok(()))
            .await?
        {
            Ok(p) => p,
            Err(r) => return self.refuse_intent(&row, r).await,
        };
        // The position is locked last, under the same session: a second
        // liquidation of it finds it locked (or spent) and gets 8006.
        let lock = store.lock_vtxos(&[position.id], &row.id, now).await;
        let refuse_locked = match lock {
            Ok(()) => None,
            Err(StoreError::Ledger(LedgerError::Locked { .. } | LedgerError::AlreadySpent(_))) => {
                Some(Rejection::new(
                    ErrorCode::AlreadyLiquidated,
                    format!("position {position_id} is already spent or being spent"),
                ))
            }
            Err(StoreError::Ledger(e)) => Some(e.into()),
            Err(e) => return Err(HandlerError::Transient(e.to_string())),
        };
        let plan = match refuse_locked.map_or_else(|| add_position(plan, &position, &approved), Err)
        {
            Ok(p) => p,
            Err(r) => {
                store
                    .release_locks(&row.id)
                    .await
                    .map_err(|e| HandlerError::Transient(e.to_string()))?;
                return self.refuse_intent(&row, r).await;
            }
        };
        tracing::info!(
            target: "audit",
            op = "cosign_conditional",
            position = %position_id,
            open_perp = %approved.open_perp,
            price_event = %witness.price.event_id,
            dex = %intent.author,
            "the relay co-signs a position's conditional leaf"
        );
        let parties = vec![Party {
            author: intent.author,
            intent: intent.event_id,
            session: row.id,
            span: plan.spans[0],
            signed: false,
            summary,
            one_step: intent.one_step,
        }];
        if self
            .runner
            .start_over(row, Purpose::Liquidation, parties, plan, vec![], &|_| {
                Ok(vec![])
            })
            .await?
        {
            self.runner.crash_at(CrashPoint::AfterChallenge)?;
        }
        Ok(JobOutcome::default())
    }
}
