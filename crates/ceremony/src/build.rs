//! Building a ceremony's parts: the transaction of a plan with its Arkade
//! Asset packet ([`prepare`]),
//! the first transition ([`start`]), the challenges, the ledger change and
//! the 31340 content.

use ark_relay_ark::asset::{control_ledger_id, genesis_packet, packet_for_colours_with, IdMap};
use ark_relay_ark::{build_offchain_tx, sign_psbt, sign_requests, Output, ServerInfo, VtxoInput};
use ark_relay_core::{
    AssetAmount, AssetId, Colour, L2Transaction, NewVtxo, PubKey, SessionId, UnixTime, VtxoId,
    VtxoStatus,
};
use ark_relay_protocol::content::{
    AssetRef, ChallengeType, ColourHint, Confirmation, PayloadToSign, SignRequest,
    SigningChallenge, VtxoEntry, VERSION,
};
use ark_relay_protocol::Rejection;
use bitcoin::Psbt;

use crate::io::{Ctx, Effect, RelaySignature, StepError, Transition};
use crate::plan::Plan;
use crate::state::{Ceremony, Party, Phase, Purpose};

/// The built transaction of a plan, before any party signs.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The ark tx, signed by the relay for its own inputs.
    pub ark_tx: Psbt,
    /// The checkpoints (unsigned).
    pub checkpoints: Vec<Psbt>,
    /// The colour hints of the outputs.
    pub hints: Vec<ColourHint>,
    /// The relay's signatures on it.
    pub relay_signed: Vec<RelaySignature>,
}

/// Signs every input of `psbt` the relay may sign; says which.
pub(crate) fn sign_own(
    psbt: &mut Psbt,
    relay: &bitcoin::secp256k1::Keypair,
    what: &'static str,
) -> Result<Vec<RelaySignature>, StepError> {
    let key = relay.x_only_public_key().0;
    let signed_by = |p: &Psbt| -> Vec<usize> {
        p.inputs
            .iter()
            .enumerate()
            .filter(|(_, i)| i.tap_script_sigs.keys().any(|(k, _)| *k == key))
            .map(|(n, _)| n)
            .collect()
    };
    let before = signed_by(psbt);
    sign_psbt(psbt, relay)?;
    let txid = psbt.unsigned_tx.compute_txid();
    Ok(signed_by(psbt)
        .into_iter()
        .filter(|n| !before.contains(n))
        .map(|input_index| RelaySignature {
            what,
            txid,
            input_index,
        })
        .collect())
}

/// Builds the ark tx and checkpoints of `plan` and signs the relay's inputs.
pub fn prepare(plan: &Plan, ctx: &Ctx<'_>) -> Result<Prepared, StepError> {
    let inputs: Vec<VtxoInput> = plan
        .inputs
        .iter()
        .enumerate()
        .map(|(i, v)| {
            if plan.cosign.iter().any(|c| c.input == i) {
                crate::lock::conditional_input(v, ctx.server)
            } else {
                VtxoInput::from_vtxo(v, ctx.server)
            }
        })
        .collect::<Result<_, _>>()?;
    let mut outputs: Vec<Output> = plan
        .outputs
        .iter()
        .enumerate()
        .map(|(i, o)| match crate::lock::lock_of(&plan.locks, i) {
            crate::OutputLock::Default => Ok(Output::Vtxo {
                owner: o.owner,
                sats: o.sats,
            }),
            lock => Ok::<_, ark_relay_ark::ArkError>(Output::TapKey {
                output_key: lock.script(&o.owner, ctx.server)?.output_key(),
                sats: o.sats,
            }),
        })
        .collect::<Result<_, _>>()?;
    // Colour is Ark state: the packet states exactly the ledger change (each
    // input's whole colour in, each output's recorded colour out; issued
    // colour makes a group's outputs exceed its inputs, burned colour the
    // reverse). It sits after the VTXO outputs, before the anchor.
    // A genesis issues a new asset and its control asset instead (their ids
    // derive from this transaction's txid; see [`genesis_colours`]); a
    // reissuance names its control asset by its own Arkade id.
    let input_colours: Vec<_> = plan.inputs.iter().map(|v| v.colour).collect();
    let output_colours: Vec<_> = plan.outputs.iter().map(|o| o.colour).collect();
    let packet = match &plan.genesis {
        Some(metadata) => {
            if !plan.spans.is_empty() || plan.outputs.len() < 2 {
                return Err(StepError::Invalid(
                    "a genesis has no party and two issued outputs".into(),
                ));
            }
            Some(genesis_packet(0, 1, 1, metadata.clone()))
                .transpose()
                .map_err(ark_relay_ark::ArkError::from)?
        }
        None => {
            // Every asset's control asset travels under its own Arkade id
            // (group 1 of the asset's genesis): the relay's in a lift or a
            // refund (`plan.control`), a party's in its mint (an LP token
            // minted by the DEX holding its control VTXO). Mapping the
            // control of an asset no control VTXO moves with costs nothing.
            let colours = input_colours.iter().chain(&output_colours).flatten();
            let ids = IdMap::for_assets(colours.map(|c| &c.asset).chain(&plan.control));
            packet_for_colours_with(&input_colours, &output_colours, &ids)
                .map_err(ark_relay_ark::ArkError::from)?
        }
    };
    if let Some(packet) = packet {
        outputs.push(Output::Raw(packet.to_txout()));
    }
    let mut tx = build_offchain_tx(ctx.server, &inputs, &outputs)?;
    let mut relay_signed = if plan.relay_inputs > 0 {
        sign_own(&mut tx.ark_tx, ctx.relay, "ark_tx")?
    } else {
        vec![]
    };
    for c in &plan.cosign {
        let key = crate::lock::cosigner(ctx.relay, c)?;
        relay_signed.extend(sign_own(&mut tx.ark_tx, &key, "ark_tx_cosign")?);
    }
    let hints = plan
        .outputs
        .iter()
        .enumerate()
        .filter_map(|(i, o)| {
            o.hint.map(|h| ColourHint {
                psbt_index: 0,
                output_index: u32::try_from(i).unwrap_or(u32::MAX),
                owner: o.owner.to_string(),
                asset: AssetRef::Id(h.asset),
                amount: h.amount.get(),
                burned: h.amount.get().saturating_sub(
                    o.colour
                        .filter(|c| c.asset == h.asset)
                        .map_or(0, |c| c.amount.get()),
                ),
            })
        })
        .collect();
    Ok(Prepared {
        ark_tx: tx.ark_tx,
        checkpoints: tx.checkpoints,
        hints,
        relay_signed,
    })
}

/// The colour a genesis with ark txid `txid` issues: 1 unit of the new asset
/// (output 0; its ledger id is the txid, Arkade group 0) and its control
/// asset (output 1; Arkade group 1, ledger id derived).
pub fn genesis_colours(txid: bitcoin::Txid) -> [Colour; 2] {
    // The ledger id of Arkade id (txid, 0): the txid in display order.
    let mut display = bitcoin::hashes::Hash::to_byte_array(txid);
    display.reverse();
    let asset = AssetId::from_bytes(display);
    [
        Colour {
            asset,
            amount: AssetAmount::new(ark_relay_ark::asset::GENESIS_UNITS),
        },
        Colour {
            asset: control_ledger_id(&asset),
            amount: AssetAmount::new(1),
        },
    ]
}

/// Everything a ceremony starts from.
#[derive(Debug, Clone)]
pub struct Start {
    /// The coordinating session (owner of the locks).
    pub id: SessionId,
    /// What it is for.
    pub purpose: Purpose,
    /// The parties (spans from the plan).
    pub parties: Vec<Party>,
    /// The plan (its inputs are locked by `id`).
    pub plan: Plan,
    /// The built transaction.
    pub prepared: Prepared,
    /// Colour created from nothing.
    pub issued: Vec<Colour>,
    /// The ceremony must end by then.
    pub expires_at: UnixTime,
}

/// The first transition: step-1 challenges to every party, or, with no
/// party, straight to `SubmitTx`.
pub fn start(s: Start, ctx: &Ctx<'_>) -> Result<Transition, StepError> {
    let ark_txid = s.prepared.ark_tx.unsigned_tx.compute_txid();
    let no_parties = s.parties.is_empty();
    let mut c = Ceremony {
        id: s.id,
        purpose: s.purpose,
        parties: s.parties,
        inputs: s.plan.inputs,
        relay_inputs: s.plan.relay_inputs,
        outputs: s.plan.outputs,
        issued: s.issued,
        burned: s.plan.burned,
        hints: s.prepared.hints,
        ark_tx: s.prepared.ark_tx,
        checkpoints: s.prepared.checkpoints,
        ark_txid,
        expires_at: s.expires_at,
        phase: Phase::Completed,
        resent: 0,
        locks: s.plan.locks,
        cosign: s.plan.cosign,
        kept: vec![],
    };
    if s.plan.genesis.is_some() {
        // The new asset's id is this txid: its colour is known only now.
        let issued = genesis_colours(ark_txid);
        for (i, colour) in issued.iter().enumerate() {
            if let Some(o) = c.outputs.get_mut(i) {
                o.colour = Some(*colour);
                o.hint = Some(*colour);
            }
            if let Some(h) = c.hints.iter_mut().find(|h| h.output_index as usize == i) {
                h.asset = AssetRef::Id(colour.asset);
            }
        }
        c.issued = issued.to_vec();
    }
    let signed = s.prepared.relay_signed;
    if no_parties {
        c.phase = Phase::ArkTxSigned {
            retry_at: ctx.now.plus_secs(ctx.timing.retry_after_secs),
            resubmit: false,
        };
        let effects = vec![submit(&c)];
        return Ok(Transition {
            next: c,
            effects,
            signed,
        });
    }
    let deadline = deadline(&c, ctx);
    c.phase = Phase::ArkTxPrepared { deadline };
    let effects = (0..c.parties.len())
        .map(|i| challenge(&c, i, 1, deadline, None))
        .collect::<Result<_, _>>()?;
    Ok(Transition {
        next: c,
        effects,
        signed,
    })
}

pub(crate) fn deadline(c: &Ceremony, ctx: &Ctx<'_>) -> UnixTime {
    ctx.now
        .plus_secs(ctx.timing.step_timeout_secs)
        .min(c.expires_at)
}

pub(crate) fn short(s: &str) -> String {
    s.chars().take(12).collect::<String>() + "…"
}

pub(crate) fn submit(c: &Ceremony) -> Effect {
    Effect::Submit {
        ark_tx: c.ark_tx.clone(),
        checkpoints: c.checkpoints.clone(),
    }
}

/// The step-`step` challenge of party `i` (`resend`: the n-th re-send's dedupe suffix).
pub(crate) fn challenge(
    c: &Ceremony,
    i: usize,
    step: u32,
    deadline: UnixTime,
    resend: Option<u32>,
) -> Result<Effect, StepError> {
    let p = &c.parties[i];
    let (kind, psbts, colour, context) = if step == 1 {
        (
            ChallengeType::SignArkTx,
            crate::one_step::step1_psbts(c, i),
            c.hints.clone(),
            format!("Step 1/{}: {}", if p.one_step { 1 } else { 2 }, p.summary),
        )
    } else {
        let what = match &c.purpose {
            Purpose::Batch { batch_id, .. } => format!(
                "batch {batch_id} (ark tx {})",
                short(&c.ark_txid.to_string())
            ),
            _ => format!("ark tx {}", short(&c.ark_txid.to_string())),
        };
        (
            ChallengeType::SignCheckpointTxs,
            c.checkpoints[p.span.range()].to_vec(),
            vec![],
            format!("Step 2/2: confirm the checkpoints of {what}"),
        )
    };
    let sign = sign_requests(&psbts, &p.author)?
        .into_iter()
        .map(|r| SignRequest {
            psbt_index: u32::try_from(r.psbt_index).unwrap_or(u32::MAX),
            input_index: u32::try_from(r.input_index).unwrap_or(u32::MAX),
            pubkey: r.pubkey.to_string(),
            leaf_hash: r.leaf_hash.to_string(),
            sighash: r.sighash.to_string(),
        })
        .collect();
    let dedupe_key = match resend {
        None => format!("31511:{}:{step}", p.session),
        Some(n) => format!("31511:{}:{step}:{n}", p.session),
    };
    Ok(Effect::Challenge {
        party: i,
        dedupe_key,
        challenge: SigningChallenge {
            v: VERSION,
            session_id: p.session,
            step,
            challenge_type: kind,
            payload_to_sign: PayloadToSign {
                psbts: psbts.iter().map(|p| p.to_string()).collect(),
                sign,
                colour,
            },
            human_readable_context: context,
            expires_at: deadline.0,
        },
    })
}

/// 31341s to every party (answering its intent) and, for a batch, the submitter.
pub(crate) fn notify_all(c: &Ceremony, r: &Rejection) -> Vec<Effect> {
    let mut out: Vec<Effect> = c
        .parties
        .iter()
        .map(|p| Effect::Notify {
            to: p.author,
            answered: p.intent,
            rejection: r.clone(),
            nip04: false,
        })
        .collect();
    if let Purpose::Batch {
        request,
        submitter,
        nip04,
        ..
    } = &c.purpose
    {
        out.push(Effect::Notify {
            to: *submitter,
            answered: *request,
            rejection: r.clone(),
            nip04: *nip04,
        });
    }
    out
}

pub(crate) fn finalize(c: &Ceremony) -> Effect {
    Effect::Finalize {
        ark_txid: c.ark_txid,
        checkpoints: c.checkpoints.clone(),
    }
}

/// The ledger rows of the finalized ark tx: default VTXO scripts of the
/// server, the earliest expiry of the inputs, and status `Available` for the
/// relay's own uncoloured outputs (inventory), `Assigned` for every other.
pub fn new_vtxos(c: &Ceremony, server: &ServerInfo, relay: &PubKey) -> Vec<NewVtxo> {
    let expires_at = c.inputs.iter().filter_map(|v| v.expires_at).min();
    c.outputs
        .iter()
        .enumerate()
        .map(|(i, o)| NewVtxo {
            id: VtxoId::new(c.ark_txid, u32::try_from(i).unwrap_or(u32::MAX)),
            owner: o.owner,
            sats: o.sats,
            colour: o.colour,
            status: if o.owner == *relay && o.colour.is_none() {
                VtxoStatus::Available
            } else {
                VtxoStatus::Assigned
            },
            tapscripts: crate::lock::lock_of(&c.locks, i)
                .tapscripts(&o.owner, server)
                .unwrap_or_else(|_| server.default_vtxo(&o.owner).to_tapscripts()),
            expires_at,
        })
        .collect()
}

pub(crate) fn ledger_change(c: &Ceremony, ctx: &Ctx<'_>) -> L2Transaction {
    L2Transaction {
        ark_txid: c.ark_txid,
        kind: c.purpose.ledger_kind().to_owned(),
        session: Some(c.id),
        inputs: c.inputs.iter().map(|v| v.id).collect(),
        outputs: new_vtxos(c, ctx.server, &ctx.relay_key()),
        issued: c.issued.clone(),
        burned: c.burned.clone(),
        finalized_at: ctx.now,
        fee: ark_relay_core::Sats::ZERO,
    }
}

fn entry(vtxo: VtxoId, owner: PubKey, sats: u64, colour: Option<Colour>) -> VtxoEntry {
    VtxoEntry {
        vtxo,
        owner,
        asset: colour.map(|c| AssetRef::Id(c.asset)),
        amount: colour.map(|c| c.amount.get()).unwrap_or(0),
        sats,
    }
}

/// The 31340's content: every intent, every spent and created VTXO.
pub fn confirmation(c: &Ceremony) -> Confirmation {
    Confirmation {
        v: VERSION,
        ark_txid: c.ark_txid.to_string(),
        intents: c.parties.iter().map(|p| p.intent).collect(),
        spent: c
            .inputs
            .iter()
            .map(|v| entry(v.id, v.owner, v.sats.get(), v.colour))
            .collect(),
        created: c
            .outputs
            .iter()
            .enumerate()
            .map(|(i, o)| {
                entry(
                    VtxoId::new(c.ark_txid, u32::try_from(i).unwrap_or(u32::MAX)),
                    o.owner,
                    o.sats.get(),
                    o.colour,
                )
            })
            .collect(),
        preimage: None,
    }
}

/// Per-asset totals.
pub type AssetTotals = Vec<(ark_relay_core::AssetId, u64)>;

/// Per asset, the colour a ceremony's inputs hold plus what it issues, and
/// what its outputs hold plus what it burns: equal when colour is conserved.
pub fn colour_balance(c: &Ceremony) -> (AssetTotals, AssetTotals) {
    use std::collections::BTreeMap;
    let add = |m: &mut BTreeMap<ark_relay_core::AssetId, u64>, col: Colour| {
        *m.entry(col.asset).or_default() += col.amount.get();
    };
    let mut ins = BTreeMap::new();
    let mut outs = BTreeMap::new();
    for col in c
        .inputs
        .iter()
        .filter_map(|v| v.colour)
        .chain(c.issued.iter().copied())
    {
        add(&mut ins, col);
    }
    for col in c
        .outputs
        .iter()
        .filter_map(|o| o.colour)
        .chain(c.burned.iter().copied())
    {
        add(&mut outs, col);
    }
    (ins.into_iter().collect(), outs.into_iter().collect())
}
