//! Contextual verification of signing challenges (PRD §11.5, DESIGN.md §4, §6).
//!
//! Pure functions: no clock, no I/O. Given what the wallet itself knows — its
//! key, the Ark server's parameters, its own VTXOs (from `sync_state`) and the
//! intent it authorised — they decide whether a 31511 challenge may be signed,
//! and if not, why. Nothing the relay states is trusted: sighashes are
//! recomputed from the PSBT, inputs are matched against the checkpoint txids
//! the wallet derives from its own VTXOs, and every output is matched against
//! the default VTXO script of the owner its colour hint names, and colour is
//! read from the ark tx's Arkade Asset packet, which must agree with the
//! hints ([`crate::packet`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use ark_relay_ark::asset::is_extension;
use ark_relay_ark::check::{check_present_signatures, check_sign_requests, checkpoint_txid};
use ark_relay_ark::script::is_anchor;
use ark_relay_ark::sign::{input_leaf, missing_signers};
use ark_relay_ark::{
    audit_checkpoint_challenge, Mismatch, Output, ServerInfo, SignRequest, VtxoInput, VtxoScript,
};
use ark_relay_core::{AssetId, EventId, PubKey, Sats, SessionId, Tapscripts, VtxoId};
use ark_relay_protocol::content::{
    AssetRef, ChallengeType, IntentContent, IntentType, SigningChallenge,
};
use base64::Engine as _;
use bitcoin::{Psbt, ScriptBuf, Txid};
use serde::{Deserialize, Serialize};

mod batch;
mod checkpoint;
pub mod perps;
pub mod renewal;

use batch::check_batch_outputs;
pub use checkpoint::verify_checkpoint_challenge;

/// A VTXO the wallet owns, as the relay's `sync_state` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedVtxo {
    /// `txid:vout`.
    pub vtxo: VtxoId,
    /// Carrier sats.
    pub sats: u64,
    /// The colour's asset id; `None` when uncoloured.
    #[serde(default)]
    pub asset_id: Option<AssetId>,
    /// The asset's ticker, if the relay knows one.
    #[serde(default)]
    pub ticker: Option<String>,
    /// Colour amount in base units (0 when uncoloured).
    #[serde(default)]
    pub amount: u64,
    /// When it expires on the Ark layer (unix seconds), if known.
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// The Taproot leaves of its output script.
    #[serde(default)]
    pub tapscripts: Tapscripts,
    /// Whether a signing session holds it.
    #[serde(default)]
    pub locked: bool,
}

/// Ticker → asset id, learnt from the wallet's own `sync_state` data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssetBook {
    tickers: BTreeMap<String, AssetId>,
}

impl AssetBook {
    /// The tickers of `vtxos`.
    pub fn from_vtxos(vtxos: &[OwnedVtxo]) -> Self {
        let mut book = Self::default();
        for v in vtxos {
            if let (Some(id), Some(t)) = (v.asset_id, v.ticker.as_ref()) {
                book.tickers.insert(t.clone(), id);
            }
        }
        book
    }

    /// Adds a ticker.
    pub fn insert(&mut self, ticker: impl Into<String>, id: AssetId) {
        self.tickers.insert(ticker.into(), id);
    }

    /// The asset id an [`AssetRef`] names, if known.
    pub fn resolve(&self, asset: &AssetRef) -> Option<AssetId> {
        match asset {
            AssetRef::Id(id) => Some(*id),
            AssetRef::Ticker(t) => self.tickers.get(t).copied(),
        }
    }

    /// A printable name: the ticker if known, else the id.
    pub fn name(&self, id: &AssetId) -> String {
        self.tickers
            .iter()
            .find(|(_, v)| *v == id)
            .map_or_else(|| id.to_string(), |(t, _)| t.clone())
    }
}

/// One coloured output: `amount` of `asset` to `recipient`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Payment {
    /// The owner of the output.
    pub recipient: PubKey,
    /// The asset.
    pub asset: AssetId,
    /// Amount in base units.
    pub amount: u64,
}

/// An intent the wallet published and authorises signatures for: its outputs
/// (payments and fee) resolved to asset ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorisedIntent {
    /// The intent's event id (= the session id of its challenges).
    pub intent_id: EventId,
    /// Every output of the intent, the fee output included.
    pub payments: Vec<Payment>,
    /// For a batch intent: what the other parties must pay the wallet
    /// (`counterparty_leg`), per asset.
    pub receives: Vec<Received>,
    /// For a batch intent: units of the wallet's own L2 asset it mints.
    pub mint: Vec<(AssetId, u64)>,
    /// Whether the intent is executed in an atomic batch (other parties'
    /// outputs are then expected in the transaction).
    pub batch: bool,
    /// For an `open_perp` (or the DEX's counter-intent issuing its token):
    /// the position whose token must come at the script its terms imply
    /// ([`perps`]).
    pub position: Option<perps::PositionIssue>,
    /// For a DEX's `liquidate`: the position it spends ([`perps`]).
    pub liquidation: Option<perps::Liquidation>,
    /// The intent asked for one-step signing (`one_step`): its step-1
    /// challenge carries the checkpoints too.
    pub one_step: bool,
}

/// One `counterparty_leg`: `amount` of `asset` the wallet expects, from
/// `from` if the leg names a counterparty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// The counterparty named by the leg.
    pub from: Option<PubKey>,
    /// The asset.
    pub asset: AssetId,
    /// Amount in base units.
    pub amount: u64,
}

impl AuthorisedIntent {
    /// Resolves a `p2p_transfer` (or a `land_lightning`, which is a transfer
    /// of the landed amount and the fee to the relay) the wallet `me` signed.
    /// Tickers are resolved with `book`; paying oneself is refused (an output
    /// to `me` would be indistinguishable from change).
    pub fn from_intent(
        intent_id: EventId,
        content: &IntentContent,
        me: &PubKey,
        book: &AssetBook,
    ) -> Result<Self, String> {
        if IntentType::parse(&content.intent_type) == Some(IntentType::Liquidate) {
            return Self::from_liquidation(intent_id, content, me, book);
        }
        if !matches!(
            IntentType::parse(&content.intent_type),
            Some(IntentType::P2pTransfer | IntentType::LandLightning)
        ) {
            return Err(format!(
                "only p2p_transfer, land_lightning and liquidate intents are signed this way, not {:?}",
                content.intent_type
            ));
        }
        let mut payments = Vec::with_capacity(content.outputs.len());
        for o in &content.outputs {
            let recipient: PubKey = o
                .recipient
                .parse()
                .map_err(|e| format!("recipient {:?}: {e}", o.recipient))?;
            if recipient == *me {
                return Err("an intent may not pay the wallet itself".into());
            }
            let asset = book
                .resolve(&o.asset)
                .ok_or_else(|| format!("unknown asset {} (no VTXO of it)", o.asset))?;
            let amount = o.amount.positive("amount").map_err(|r| r.message)?;
            payments.push(Payment {
                recipient,
                asset,
                amount,
            });
        }
        Ok(Self {
            intent_id,
            payments,
            receives: vec![],
            mint: vec![],
            batch: false,
            position: None,
            liquidation: None,
            one_step: content.one_step,
        })
    }

    /// Resolves a batch intent (`atomic_swap`, `add_liquidity`,
    /// `remove_liquidity`) the wallet `me` signed: its outputs are what it
    /// pays, its `counterparty_leg` what it must receive, its `mint` what it
    /// creates of its own L2 asset. Tickers resolve with `book`; asset ids are
    /// taken as they are (the wallet may not hold the asset it will receive).
    pub fn from_batch_intent(
        intent_id: EventId,
        content: &IntentContent,
        me: &PubKey,
        book: &AssetBook,
    ) -> Result<Self, String> {
        let kind = IntentType::parse(&content.intent_type)
            .ok_or_else(|| format!("unknown intent type {:?}", content.intent_type))?;
        if !kind.needs_batch() {
            return Err(format!("{} is not a batch intent", kind.as_str()));
        }
        let resolve = |a: &AssetRef| {
            book.resolve(a)
                .ok_or_else(|| format!("unknown asset {a} (use its id, or hold some)"))
        };
        let mut payments = Vec::with_capacity(content.outputs.len());
        for o in &content.outputs {
            let recipient: PubKey = o
                .recipient
                .parse()
                .map_err(|e| format!("recipient {:?}: {e}", o.recipient))?;
            if recipient == *me {
                return Err("an intent may not pay the wallet itself".into());
            }
            payments.push(Payment {
                recipient,
                asset: resolve(&o.asset)?,
                amount: o.amount.positive("amount").map_err(|r| r.message)?,
            });
        }
        let mut receives = Vec::new();
        for l in content.counterparty_leg.iter().flat_map(|l| l.as_slice()) {
            receives.push(Received {
                from: l
                    .recipient
                    .as_deref()
                    .map(str::parse)
                    .transpose()
                    .map_err(|e| format!("counterparty: {e}"))?,
                asset: resolve(&l.asset)?,
                amount: l.amount.positive("amount").map_err(|r| r.message)?,
            });
        }
        let mut mint = Vec::new();
        for m in content.mint.iter().flatten() {
            mint.push((
                resolve(&m.asset)?,
                m.amount.positive("amount").map_err(|r| r.message)?,
            ));
        }
        let position = match (kind, &content.perp) {
            (IntentType::OpenPerp, Some(t)) => Some(perps::PositionIssue {
                user: *me,
                open_perp: intent_id,
                terms: t.validate().map_err(|r| r.message)?,
            }),
            (IntentType::OpenPerp, None) => return Err("open_perp without its terms".into()),
            _ => None,
        };
        Ok(Self {
            intent_id,
            payments,
            receives,
            mint,
            batch: true,
            position,
            liquidation: None,
            one_step: content.one_step,
        })
    }

    /// The session id of the intent's challenges.
    pub fn session_id(&self) -> SessionId {
        SessionId::from(self.intent_id)
    }
}

/// Why a challenge is refused: every problem found (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// One line per problem.
    pub reasons: Vec<String>,
}

impl Refusal {
    /// A refusal for one reason.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reasons: vec![reason.into()],
        }
    }

    /// The text sent in a 31512 `reject` (bounded in length).
    pub fn reject_text(&self) -> String {
        let mut s = self.to_string();
        if s.len() > 1000 {
            let mut cut = 1000;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            s.push('…');
        }
        s
    }

    /// Whether any reason contains `needle` (for tests and logs).
    pub fn mentions(&self, needle: &str) -> bool {
        self.reasons.iter().any(|r| r.contains(needle))
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reasons.join("; "))
    }
}

impl std::error::Error for Refusal {}

fn refuse_if(reasons: Vec<String>) -> Result<(), Refusal> {
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(Refusal { reasons })
    }
}

/// What the wallet knows independently of the relay's challenge.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The Ark server's parameters.
    pub server: &'a ServerInfo,
    /// The wallet's key.
    pub me: &'a PubKey,
    /// Its VTXOs (from `sync_state`, taken when the intent was authorised).
    pub vtxos: &'a [OwnedVtxo],
    /// Ticker → asset id.
    pub assets: &'a AssetBook,
    /// The relay's key (its fee and its uncoloured change go there).
    pub relay: &'a PubKey,
    /// What the Ark server's indexer said my VTXOs hold, looked up just
    /// before this challenge; `None` when not checked (no indexer configured
    /// or unreachable: my own history is then all I check against).
    pub indexer: Option<&'a IndexerView>,
}

/// The Ark server's indexer's answer for my VTXOs: each one it lists as
/// unspent, with the asset denominations it holds (arkd `Vtxo.assets`).
pub type IndexerView = HashMap<VtxoId, Vec<(ark_relay_ark::asset::ArkadeAssetId, u64)>>;

/// A verified step 1: what was signed, kept to check step 2 against.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedArkTx {
    /// The ark tx.
    pub ark_tx: Psbt,
    /// The inputs to sign (sighashes recomputed from the PSBTs): the ark
    /// tx's (`psbt_index` 0) and, one-step, the checkpoints' (`1 + k`).
    pub requests: Vec<SignRequest>,
    /// One-step signing: the checkpoints of step 1 (`psbts[1..]`), checked.
    pub checkpoints: Vec<Psbt>,
    /// The wallet's VTXOs it spends (and the position of a liquidation).
    pub spent: Vec<VtxoId>,
    /// For a DEX's liquidation: the position's co-signer key, whose
    /// signature the relay adds to the checkpoint after the DEX's.
    pub cosigner: Option<bitcoin::secp256k1::XOnlyPublicKey>,
}

/// Decodes a base64 PSBT.
pub fn decode_psbt(b64: &str) -> Result<Psbt, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| format!("PSBT is not base64: {e}"))?;
    Psbt::deserialize(&bytes).map_err(|e| format!("not a PSBT: {e}"))
}

/// Encodes a PSBT as base64 (the wire form).
pub fn encode_psbt(psbt: &Psbt) -> String {
    base64::engine::general_purpose::STANDARD.encode(psbt.serialize())
}

/// Converts the wire `sign` entries to typed requests (same field names).
pub fn parse_sign_requests(
    entries: &[ark_relay_protocol::content::SignRequest],
) -> Result<Vec<SignRequest>, String> {
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            serde_json::to_value(e)
                .and_then(serde_json::from_value)
                .map_err(|err| format!("sign[{i}] is malformed: {err}"))
        })
        .collect()
}

/// The wire form of typed requests (what a relay sends).
pub fn wire_sign_requests(
    requests: &[SignRequest],
) -> Result<Vec<ark_relay_protocol::content::SignRequest>, String> {
    requests
        .iter()
        .map(|r| {
            serde_json::to_value(r)
                .and_then(serde_json::from_value)
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// A human-readable mismatch.
pub fn describe(m: &Mismatch) -> String {
    match m {
        Mismatch::Unreadable {
            psbt_index,
            input_index,
            reason,
        } => format!("PSBT {psbt_index} input {input_index:?} is unreadable: {reason}"),
        Mismatch::NoSuchInput {
            psbt_index,
            input_index,
        } => format!("sign entry names missing input {psbt_index}/{input_index}"),
        Mismatch::ForeignKey {
            psbt_index,
            input_index,
            pubkey,
        } => format!(
            "sign entry {psbt_index}/{input_index} is for another key ({pubkey}), not mine"
        ),
        Mismatch::KeyNotInLeaf {
            psbt_index,
            input_index,
        } => format!("my key does not sign the leaf of input {psbt_index}/{input_index}"),
        Mismatch::LeafHash {
            psbt_index,
            input_index,
            ..
        } => format!("leaf hash mismatch on input {psbt_index}/{input_index}"),
        Mismatch::Sighash {
            psbt_index,
            input_index,
            claimed,
            actual,
        } => format!(
            "sighash mismatch on input {psbt_index}/{input_index}: claimed {claimed}, PSBT gives {actual}"
        ),
        Mismatch::NotACheckpoint {
            psbt_index,
            expected,
            got,
        } => format!(
            "checkpoint {psbt_index} is not built per the server's rules (expected {expected}, got {got})"
        ),
        Mismatch::CheckpointNotSpent { psbt_index, txid } => {
            format!("checkpoint {psbt_index} ({txid}) is not spent by the ark tx I signed")
        }
        Mismatch::BadSignature { psbt_index, reason } => {
            format!("a signature in PSBT {psbt_index} does not verify: {reason}")
        }
        other => format!("{other:?}"),
    }
}

/// One of my VTXOs as an ark-tx input would spend it.
struct Spendable<'a> {
    vtxo: &'a OwnedVtxo,
    leaf: ScriptBuf,
}

/// My VTXOs by the txid of the checkpoint tx that spends them (an ark-tx input
/// spending my VTXO points at `<that txid>:0`).
fn my_checkpoints<'a>(ctx: &Context<'a>) -> HashMap<Txid, Spendable<'a>> {
    let mut out = HashMap::new();
    for v in ctx.vtxos {
        let Ok(script) = VtxoScript::from_tapscripts(&v.tapscripts) else {
            continue;
        };
        let Some(leaf) = script
            .collaborative_leaf(ctx.me.x_only(), ctx.server.signer())
            .cloned()
        else {
            continue;
        };
        let Ok(input) = VtxoInput::new(v.vtxo, Sats::new(v.sats), script, leaf.clone()) else {
            continue;
        };
        if let Ok(txid) = checkpoint_txid(ctx.server, &input) {
            out.insert(txid, Spendable { vtxo: v, leaf });
        }
    }
    out
}

fn add(map: &mut BTreeMap<AssetId, u64>, asset: AssetId, amount: u64) {
    let e = map.entry(asset).or_insert(0);
    *e = e.saturating_add(amount);
}

/// Checks a step-1 `sign_ark_tx` challenge against the intent (see the module
/// docs and PRD §11.5). On success returns what to sign.
pub fn verify_ark_tx_challenge(
    ctx: &Context<'_>,
    intent: &AuthorisedIntent,
    ch: &SigningChallenge,
) -> Result<VerifiedArkTx, Refusal> {
    if ch.session_id != intent.session_id() {
        return Err(Refusal::new(format!(
            "session {} is not the session of my intent {}",
            ch.session_id, intent.intent_id
        )));
    }
    if ch.step != 1 || ch.challenge_type != ChallengeType::SignArkTx {
        return Err(Refusal::new(format!(
            "expected step 1 sign_ark_tx, got step {} {:?}",
            ch.step, ch.challenge_type
        )));
    }
    let (psbt, requests, checkpoints) = checkpoint::split_step1(intent, &ch.payload_to_sign)?;
    let mut v = verify_ark_tx(ctx, intent, ch, psbt, requests)?;
    if let Some((checkpoints, requests)) = checkpoints {
        checkpoint::verify_step1_checkpoints(ctx, &mut v, checkpoints, requests)?;
    }
    Ok(v)
}

/// Checks the ark tx of a step-1 challenge (`requests`: its own, PSBT 0).
fn verify_ark_tx(
    ctx: &Context<'_>,
    intent: &AuthorisedIntent,
    ch: &SigningChallenge,
    psbt: Psbt,
    requests: Vec<SignRequest>,
) -> Result<VerifiedArkTx, Refusal> {
    let payload = &ch.payload_to_sign;
    if requests.is_empty() {
        return Err(Refusal::new("the challenge asks for no signature"));
    }
    let mut why = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for r in &requests {
        if r.psbt_index != 0 {
            why.push(format!("sign entry names PSBT {}", r.psbt_index));
        }
        if !seen.insert((r.psbt_index, r.input_index)) {
            why.push(format!("input {} is asked for twice", r.input_index));
        }
    }
    refuse_if(why)?;
    let psbts = std::slice::from_ref(&psbt);
    let (mismatches, _) = check_sign_requests(psbts, &requests, ctx.me);
    let mut why: Vec<String> = mismatches.iter().map(describe).collect();
    why.extend(check_present_signatures(psbts).iter().map(describe));
    refuse_if(why)?;

    // Inputs: each one I sign spends one of my VTXOs through its checkpoint.
    let mine = my_checkpoints(ctx);
    let mut why = Vec::new();
    let mut in_colour = BTreeMap::new();
    let mut in_sats: u64 = 0;
    let mut spent = Vec::new();
    let mut own_inputs = Vec::new();
    let mut own_ids: Vec<(usize, VtxoId)> = Vec::new();
    for r in &requests {
        let i = r.input_index;
        let Some(txin) = psbt.unsigned_tx.input.get(i) else {
            why.push(format!("input {i} does not exist"));
            continue;
        };
        let prev = txin.previous_output;
        let Some(own) = mine.get(&prev.txid).filter(|_| prev.vout == 0) else {
            // A DEX's liquidation: the position, through its conditional leaf.
            match perps::position_input(ctx, intent, &psbt, i) {
                Some(p) => {
                    // Its token is an L2 asset (the relay's ledger, not the
                    // packet) and is burned: not my colour to conserve.
                    in_sats = in_sats.saturating_add(p.sats);
                    spent.push(p.vtxo);
                }
                None => why.push(format!("input {i} ({prev}) does not spend a VTXO of mine")),
            }
            continue;
        };
        match input_leaf(&psbt, i) {
            Ok((leaf, _)) if leaf == own.leaf => {}
            _ => why.push(format!(
                "input {i} is not spent through my collaborative leaf"
            )),
        }
        let claimed = psbt
            .inputs
            .get(i)
            .and_then(|p| p.witness_utxo.as_ref())
            .map(|o| o.value.to_sat());
        if claimed != Some(own.vtxo.sats) {
            why.push(format!(
                "input {i} claims {claimed:?} sats, my VTXO {} has {}",
                own.vtxo.vtxo, own.vtxo.sats
            ));
        }
        in_sats = in_sats.saturating_add(own.vtxo.sats);
        if let Some(asset) = own.vtxo.asset_id {
            add(&mut in_colour, asset, own.vtxo.amount);
        }
        own_inputs.push((i, own.vtxo.asset_id.map(|a| (a, own.vtxo.amount))));
        own_ids.push((i, own.vtxo.vtxo));
        spent.push(own.vtxo.vtxo);
    }
    // Colour is read from the transaction: the packet must say what the hints say.
    why.extend(crate::packet::check_packet(
        &psbt,
        &payload.colour,
        ctx.assets,
        &own_inputs,
    ));
    // ... and what the Ark server holds: my inputs as its indexer lists them.
    if let Some(view) = ctx.indexer {
        why.extend(crate::packet::check_inputs_at_indexer(
            &psbt, &own_ids, view, ctx.assets,
        ));
    }

    if intent.batch {
        why.extend(check_batch_outputs(
            ctx, intent, &psbt, payload, &in_colour, in_sats,
        ));
        refuse_if(why)?;
        return Ok(VerifiedArkTx {
            ark_tx: psbt,
            requests,
            spent,
            cosigner: None,
            checkpoints: vec![],
        });
    }

    // Outputs: every hint is a default VTXO of its owner; others' outputs are
    // exactly the intent's payments; uncoloured outputs only to the relay (its
    // carrier change) or to me (my surplus sats).
    let outs = &psbt.unsigned_tx.output;
    let mut hinted = vec![false; outs.len()];
    let mut others: Vec<Payment> = Vec::new();
    let mut change = BTreeMap::new();
    let mut hinted_sats: u64 = 0;
    for h in &payload.colour {
        let o = h.output_index as usize;
        if h.psbt_index != 0 {
            why.push(format!("colour hint names PSBT {}", h.psbt_index));
            continue;
        }
        let Some(out) = outs.get(o) else {
            why.push(format!("colour hint names missing output {o}"));
            continue;
        };
        if is_anchor(&out.script_pubkey) {
            why.push(format!("colour hint on the anchor output {o}"));
            continue;
        }
        if std::mem::replace(&mut hinted[o], true) {
            why.push(format!("output {o} has two colour hints"));
            continue;
        }
        let Ok(owner) = h.owner.parse::<PubKey>() else {
            why.push(format!("output {o}: owner {:?} is not a key", h.owner));
            continue;
        };
        let Some(asset) = ctx.assets.resolve(&h.asset) else {
            why.push(format!("output {o}: unknown asset {}", h.asset));
            continue;
        };
        if h.amount == 0 {
            why.push(format!("output {o}: colour amount 0"));
        }
        let sats = out.value.to_sat();
        let want = Output::Vtxo {
            owner,
            sats: Sats::new(sats),
        }
        .to_tx_out(ctx.server);
        if want.script_pubkey != out.script_pubkey {
            why.push(format!(
                "output {o} is not a VTXO of {owner}, whom its colour hint names"
            ));
            continue;
        }
        hinted_sats = hinted_sats.saturating_add(sats);
        if owner == *ctx.me {
            add(&mut change, asset, h.amount);
        } else {
            others.push(Payment {
                recipient: owner,
                asset,
                amount: h.amount,
            });
        }
    }
    for (o, out) in outs.iter().enumerate() {
        if hinted[o] || is_anchor(&out.script_pubkey) || is_extension(&out.script_pubkey) {
            continue;
        }
        // Uncoloured: the relay's carrier change, or my own surplus sats.
        let sats = out.value.to_sat();
        let script_of = |owner: PubKey| {
            Output::Vtxo {
                owner,
                sats: Sats::new(sats),
            }
            .to_tx_out(ctx.server)
            .script_pubkey
        };
        if script_of(*ctx.me) == out.script_pubkey {
            hinted_sats = hinted_sats.saturating_add(sats);
        } else if script_of(*ctx.relay) != out.script_pubkey {
            why.push(format!(
                "output {o} ({sats} sats) has no colour and is neither mine nor the relay's change"
            ));
        }
    }

    let name = |a: &AssetId| ctx.assets.name(a);
    let mut expected = intent.payments.clone();
    expected.sort();
    others.sort();
    let mut unmatched = others.clone();
    for want in &expected {
        if let Some(pos) = unmatched.iter().position(|p| p == want) {
            unmatched.remove(pos);
        } else {
            why.push(format!(
                "outputs do not match my intent: no output pays {} {} to {}",
                want.amount,
                name(&want.asset),
                want.recipient
            ));
        }
    }
    for p in &unmatched {
        why.push(format!(
            "outputs do not match my intent: unexpected {} {} to {}",
            p.amount,
            name(&p.asset),
            p.recipient
        ));
    }

    // Colour conservation for my inputs: in = payments + fee + my change.
    let mut out_colour = change.clone();
    for p in &expected {
        add(&mut out_colour, p.asset, p.amount);
    }
    let assets: std::collections::BTreeSet<AssetId> =
        in_colour.keys().chain(out_colour.keys()).copied().collect();
    for a in assets {
        let (i, o) = (
            in_colour.get(&a).copied().unwrap_or(0),
            out_colour.get(&a).copied().unwrap_or(0),
        );
        if i != o {
            why.push(format!(
                "colour not conserved for {}: my inputs carry {i}, payments, fee and my change {o}",
                name(&a)
            ));
        }
    }
    if in_sats > hinted_sats {
        why.push(format!(
            "my inputs' {in_sats} sats exceed the {hinted_sats} sats of my change, recipients and fee"
        ));
    }
    refuse_if(why)?;
    Ok(VerifiedArkTx {
        ark_tx: psbt,
        requests,
        spent,
        cosigner: perps::liquidation_cosigner(ctx, intent),
        checkpoints: vec![],
    })
}
