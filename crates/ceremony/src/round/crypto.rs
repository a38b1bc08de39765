//! The round's cryptography on ark-core 0.12's batch functions: the
//! relay-signed intent proof, the checks of the VTXO tree against the jobs'
//! outputs, MuSig2 nonces and partial signatures, forfeits (own and
//! delegated) and the boarding inputs' commitment signatures. Written here
//! only: the connector assignment across own and delegated VTXOs and the
//! tree check (ark-client 0.12 does not check the tree).

use std::collections::{BTreeMap, HashMap};

use ark_core::batch::{
    complete_delegate_forfeit_txs, create_and_sign_forfeit_txs, generate_nonce_tree,
    sign_batch_tree_tx, sign_commitment_psbt, NonceKps, OnChainInput,
};
use ark_core::intent::{self, IntentMessage};
use ark_core::server::TreeTxNoncePks;
use ark_core::{BoardingOutput, TxGraph};
use ark_relay_ark::script::is_anchor;
use ark_relay_ark::{RelativeLocktime, ServerInfo, VtxoScript};
use ark_relay_core::backends::rounds::RoundTerms;
use ark_relay_core::UnixTime;
use bitcoin::key::{Keypair, Secp256k1};
use bitcoin::secp256k1::{schnorr, Message, XOnlyPublicKey};
use bitcoin::{Amount, OutPoint, Psbt, Sequence, TxOut, Txid};
use rand::SeedableRng;

use super::job::{JobInput, RoundJob};
use super::state::Entry;

/// What the round's cryptography needs.
#[derive(Debug, Clone, Copy)]
pub struct RoundCtx<'a> {
    /// The Ark server's parameters.
    pub server: &'a ServerInfo,
    /// Forfeit address and boarding terms.
    pub terms: &'a RoundTerms,
    /// The relay's key: owner of its VTXOs and boarding outputs.
    pub relay: &'a Keypair,
    /// The relay's tree cosigner key (also the delegate cosigner).
    pub cosigner: &'a Keypair,
    /// Now.
    pub now: UnixTime,
    /// Timing and retry policy.
    pub policy: RoundPolicy,
}

/// Timing and retry policy of participations (`[rounds]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundPolicy {
    /// How long registered intents wait for a round to take them (s).
    pub wait_for_round_secs: i64,
    /// How long a taken round may run before its outcome is checked (s).
    pub round_timeout_secs: i64,
    /// Lifetime of a relay-signed intent at the server (s).
    pub intent_ttl_secs: i64,
    /// Rounds a job may take part in before it fails for good.
    pub max_attempts: u32,
    /// A job no round took (its registration refused for now, or another
    /// round took the others) waits this long before the next try (s).
    pub requeue_after_secs: i64,
}

impl Default for RoundPolicy {
    fn default() -> Self {
        Self {
            wait_for_round_secs: 300,
            round_timeout_secs: 180,
            intent_ttl_secs: 600,
            max_attempts: 10,
            requeue_after_secs: 5,
        }
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn sign(kp: &Keypair, msg: &Message) -> schnorr::Signature {
    Secp256k1::new().sign_schnorr_no_aux_rand(msg, kp)
}

/// The relay's boarding output at this server (ark-core's `BoardingOutput`).
pub fn boarding_output(ctx: &RoundCtx<'_>) -> Result<BoardingOutput, String> {
    let delay = RelativeLocktime::from_server_value(ctx.terms.boarding_exit_delay).map_err(err)?;
    BoardingOutput::new(
        &Secp256k1::new(),
        *ctx.server.signer(),
        ctx.relay.x_only_public_key().0,
        delay.to_sequence(),
        ctx.server.network(),
    )
    .map_err(err)
}

fn assets(job_assets: &[super::job::JobAsset]) -> Result<Vec<ark_core::Asset>, String> {
    job_assets
        .iter()
        .map(|a| {
            Ok(ark_core::Asset {
                asset_id: a.asset_id.parse().map_err(err)?,
                amount: a.amount,
            })
        })
        .collect()
}

/// The intent inputs of a relay-signed job: its VTXOs (on their
/// collaborative leaf) and boarding outputs (on the forfeit leaf).
pub fn relay_inputs(
    job: &RoundJob,
    ctx: &RoundCtx<'_>,
) -> Result<(Vec<intent::Input>, Vec<OnChainInput>), String> {
    let relay = ctx.relay.x_only_public_key().0;
    let mut inputs = Vec::new();
    let mut onchain = Vec::new();
    for i in &job.inputs {
        match i {
            JobInput::RelayVtxo {
                vtxo,
                sats,
                tapscripts,
                swept,
                assets: a,
            } => {
                let script = VtxoScript::from_tapscripts(tapscripts).map_err(err)?;
                let leaf = script
                    .collaborative_leaf(&relay, ctx.server.signer())
                    .ok_or_else(|| format!("{vtxo} has no collaborative leaf of the relay"))?
                    .clone();
                let control = script.control_block(&leaf).map_err(err)?;
                inputs.push(intent::Input::new(
                    vtxo.outpoint(),
                    Sequence::MAX,
                    None,
                    TxOut {
                        value: Amount::from_sat(sats.get()),
                        script_pubkey: script.script_pubkey(),
                    },
                    script.leaves().to_vec(),
                    (leaf, control),
                    false,
                    *swept,
                    assets(a)?,
                ));
            }
            JobInput::Boarding { outpoint, sats } => {
                let b = boarding_output(ctx)?;
                let spend = b.forfeit_spend_info();
                let amount = Amount::from_sat(sats.get());
                onchain.push(OnChainInput::new(
                    b.exit_delay(),
                    b.script_pubkey(),
                    b.tapscripts(),
                    spend.clone(),
                    relay,
                    amount,
                    *outpoint,
                ));
                inputs.push(intent::Input::new(
                    *outpoint,
                    b.exit_delay(),
                    None,
                    TxOut {
                        value: amount,
                        script_pubkey: b.script_pubkey(),
                    },
                    b.tapscripts(),
                    spend,
                    true,
                    false,
                    Vec::new(),
                ));
            }
            JobInput::Delegated { vtxo, .. } => {
                return Err(format!("{vtxo} is delegated: the relay cannot sign it"));
            }
        }
    }
    Ok((inputs, onchain))
}

/// The outputs the job asks for, at each owner's default VTXO script.
pub fn job_outputs(job: &RoundJob, server: &ServerInfo) -> Vec<TxOut> {
    job.outputs
        .iter()
        .map(|o| TxOut {
            value: Amount::from_sat(o.sats.get()),
            script_pubkey: server.default_vtxo(&o.owner).script_pubkey(),
        })
        .collect()
}

/// Builds and signs a relay job's `register` intent (valid from a minute
/// ago, for `intent_ttl_secs`, cosigner = the relay's cosigner key).
pub fn relay_intent(job: &RoundJob, ctx: &RoundCtx<'_>) -> Result<(Psbt, String), String> {
    let (inputs, _) = relay_inputs(job, ctx)?;
    let mut outputs: Vec<intent::Output> = job_outputs(job, ctx.server)
        .into_iter()
        .map(intent::Output::Offchain)
        .collect();
    if let Some(packet) =
        ark_core::batch::create_asset_preservation_packet(&inputs, &outputs).map_err(err)?
    {
        outputs.push(intent::Output::AssetPacket(packet.to_txout()));
    }
    let now = u64::try_from(ctx.now.0).unwrap_or(0);
    let ttl = u64::try_from(ctx.policy.intent_ttl_secs).unwrap_or(600);
    let message = IntentMessage::Register {
        onchain_output_indexes: Vec::new(),
        valid_at: now.saturating_sub(60),
        expire_at: now + ttl,
        own_cosigner_pks: vec![ctx.cosigner.public_key()],
    };
    let kp = *ctx.relay;
    let relay = kp.x_only_public_key().0;
    let intent = intent::make_intent(
        move |_, msg| Ok(vec![(sign(&kp, &msg), relay)]),
        move |_, msg| Ok((sign(&kp, &msg), relay)),
        inputs,
        outputs,
        message,
    )
    .map_err(err)?;
    let message = intent.serialize_message().map_err(err)?;
    Ok((intent.proof, message))
}

/// An output a round must create: its amount and script, and the assets its
/// leaf packet must give it (`(Arkade asset id, amount)`, sorted; empty for
/// an uncoloured VTXO).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Required {
    /// Amount and script.
    pub txout: TxOut,
    /// Assets, sorted by id.
    pub assets: Vec<(String, u64)>,
}

/// What every job's outputs require of the tree, in job order.
pub fn job_required(job: &RoundJob, server: &ServerInfo) -> Vec<Required> {
    job_outputs(job, server)
        .into_iter()
        .zip(&job.outputs)
        .map(|(txout, o)| {
            let mut assets: Vec<(String, u64)> = o
                .assets
                .iter()
                .map(|a| (a.asset_id.to_ascii_lowercase(), a.amount))
                .collect();
            assets.sort();
            Required { txout, assets }
        })
        .collect()
}

/// The assets a leaf's packet gives each of its outputs (sorted per output);
/// `None` when its packet does not decode (such outputs match nothing).
fn leaf_colours(tx: &bitcoin::Transaction) -> Option<BTreeMap<u32, Vec<(String, u64)>>> {
    let txid = tx.compute_txid();
    match ark_relay_ark::asset::tx_leaf_packet(tx) {
        Ok(None) => Some(BTreeMap::new()),
        Ok(Some((_, packet))) => Some(
            ark_relay_ark::asset::output_assets(txid, &packet)
                .into_iter()
                .map(|(vout, list)| {
                    let mut list: Vec<(String, u64)> = list
                        .into_iter()
                        .map(|(id, n)| (id.to_string(), n))
                        .collect();
                    list.sort();
                    (vout, list)
                })
                .collect(),
        ),
        Err(_) => None,
    }
}

/// Checks that the VTXO tree hangs off `commitment` (root spends its output
/// 0) and that its leaves pay every `required` output (amount, script and
/// the assets the leaf's packet gives it, counted with multiplicity);
/// returns the outpoint paying each, in order. The relay signs nothing and
/// forfeits nothing for a tree that fails this — in particular not a
/// coloured VTXO whose replacement would come without its assets.
pub fn tree_pays(
    graph: &TxGraph,
    commitment: Txid,
    required: &[Required],
) -> Result<Vec<OutPoint>, String> {
    let root = &graph.root().unsigned_tx;
    let spends = root.input.first().map(|i| i.previous_output);
    if spends != Some(OutPoint::new(commitment, 0)) {
        return Err(format!(
            "the tree's root does not spend {commitment}:0 (it spends {spends:?})"
        ));
    }
    // (sats, script) → the outputs paying them, with their leaf colours.
    type Paying = Vec<(OutPoint, Option<Vec<(String, u64)>>)>;
    let mut available: HashMap<(u64, Vec<u8>), Paying> = HashMap::new();
    for leaf in graph.leaves() {
        let txid = leaf.unsigned_tx.compute_txid();
        let colours = leaf_colours(&leaf.unsigned_tx);
        for (vout, o) in leaf.unsigned_tx.output.iter().enumerate() {
            if o.value > Amount::ZERO && !is_anchor(&o.script_pubkey) {
                let vout = u32::try_from(vout).map_err(err)?;
                let assets = colours
                    .as_ref()
                    .map(|c| c.get(&vout).cloned().unwrap_or_default());
                available
                    .entry((o.value.to_sat(), o.script_pubkey.to_bytes()))
                    .or_default()
                    .push((OutPoint::new(txid, vout), assets));
            }
        }
    }
    for outpoints in available.values_mut() {
        outpoints.sort_by_key(|(o, _)| *o);
    }
    let mut paid = Vec::with_capacity(required.len());
    for r in required {
        let key = (r.txout.value.to_sat(), r.txout.script_pubkey.to_bytes());
        let found = available.get_mut(&key).and_then(|list| {
            let at = list
                .iter()
                .position(|(_, assets)| assets.as_ref() == Some(&r.assets))?;
            Some(list.remove(at).0)
        });
        match found {
            Some(o) => paid.push(o),
            None => {
                return Err(format!(
                    "the tree does not pay {} sats with assets {:?} to {}",
                    r.txout.value.to_sat(),
                    r.assets,
                    r.txout.script_pubkey
                ))
            }
        }
    }
    Ok(paid)
}

/// Our MuSig2 nonces for every tree node we cosign.
pub fn nonces(
    graph: &TxGraph,
    ctx: &RoundCtx<'_>,
    commitment: &Psbt,
    entropy: [u8; 32],
) -> Result<(NonceKps, BTreeMap<Txid, Vec<u8>>), String> {
    let mut rng = rand::rngs::StdRng::from_seed(entropy);
    let tree =
        generate_nonce_tree(&mut rng, graph, ctx.cosigner.public_key(), commitment).map_err(err)?;
    let public = tree
        .to_nonce_pks()
        .encode()
        .into_iter()
        .map(|(txid, hex_nonce)| {
            let txid: Txid = txid.parse().map_err(err)?;
            Ok((txid, hex::decode(hex_nonce).map_err(err)?))
        })
        .collect::<Result<BTreeMap<_, _>, String>>()?;
    Ok((tree, public))
}

/// A node's public nonces as ark-core reads them.
pub fn tree_tx_nonces(
    nonces: &BTreeMap<XOnlyPublicKey, Vec<u8>>,
) -> Result<TreeTxNoncePks, String> {
    TreeTxNoncePks::decode(
        nonces
            .iter()
            .map(|(k, v)| (k.to_string(), hex::encode(v)))
            .collect(),
    )
    .map_err(err)
}

/// Our partial signatures of every node, once every node's nonces are in.
pub fn sign_tree(
    graph: &TxGraph,
    ctx: &RoundCtx<'_>,
    batch_expiry: Sequence,
    commitment: &Psbt,
    tree_nonces: &HashMap<Txid, TreeTxNoncePks>,
    ours: &mut NonceKps,
) -> Result<BTreeMap<Txid, Vec<u8>>, String> {
    let mut out = BTreeMap::new();
    for txid in graph.as_map().keys() {
        let node = tree_nonces
            .get(txid)
            .ok_or_else(|| format!("no nonces for tree node {txid}"))?;
        let agg = ark_core::batch::aggregate_nonces(node.clone());
        let sigs = sign_batch_tree_tx(
            *txid,
            batch_expiry,
            *ctx.server.forfeit_key(),
            ctx.cosigner,
            agg,
            graph,
            commitment,
            ours,
        )
        .map_err(err)?;
        for (t, s) in sigs.encode() {
            out.insert(t.parse().map_err(err)?, hex::decode(s).map_err(err)?);
        }
    }
    Ok(out)
}

/// Non-zero, non-anchor outputs of the connector tree's leaves.
fn connector_outpoints<'g>(leaves: &[&'g Psbt]) -> Vec<(OutPoint, &'g Psbt)> {
    let mut out = Vec::new();
    for leaf in leaves {
        let txid = leaf.unsigned_tx.compute_txid();
        for (vout, o) in leaf.unsigned_tx.output.iter().enumerate() {
            if o.value > Amount::ZERO && !is_anchor(&o.script_pubkey) {
                out.push((
                    OutPoint::new(txid, u32::try_from(vout).unwrap_or(u32::MAX)),
                    *leaf,
                ));
            }
        }
    }
    out
}

/// The forfeits of every in-round entry: the relay's own (signed here) and
/// the delegated ones (completed with their connectors). Connectors are
/// assigned as ark-core does (sorted connector outpoints zipped with sorted
/// forfeited VTXO outpoints), across own and delegated VTXOs together.
pub fn forfeits(
    entries: &[&Entry],
    connectors: Option<&TxGraph>,
    ctx: &RoundCtx<'_>,
) -> Result<Vec<Psbt>, String> {
    let dust = Amount::from_sat(ctx.server.dust().get());
    let mut own: Vec<intent::Input> = Vec::new();
    let mut delegated: Vec<Psbt> = Vec::new();
    for e in entries {
        match &e.job.delegation {
            None => {
                let vtxos_only = RoundJob {
                    inputs: e
                        .job
                        .inputs
                        .iter()
                        .filter(|i| matches!(i, JobInput::RelayVtxo { .. }))
                        .cloned()
                        .collect(),
                    ..e.job.clone()
                };
                let (inputs, _) = relay_inputs(&vtxos_only, ctx)?;
                own.extend(
                    inputs
                        .into_iter()
                        .filter(|i| !i.is_swept() && i.amount() >= dust),
                );
            }
            Some(d) => delegated.extend(d.forfeit_psbts.iter().cloned()),
        }
    }
    if own.is_empty() && delegated.is_empty() {
        return Ok(Vec::new());
    }
    let graph = connectors.ok_or("the round sent no connectors for our VTXOs")?;
    let leaves = graph.leaves();
    let mut conns = connector_outpoints(&leaves);
    conns.sort_by_key(|(o, _)| *o);
    let mut vtxos: Vec<(OutPoint, bool)> = own
        .iter()
        .map(|i| (i.outpoint(), true))
        .chain(
            delegated
                .iter()
                .filter_map(|p| p.unsigned_tx.input.first())
                .map(|i| (i.previous_output, false)),
        )
        .collect();
    vtxos.sort_by_key(|(o, _)| *o);
    if vtxos.len() != conns.len() {
        return Err(format!(
            "{} connectors for {} forfeited VTXOs",
            conns.len(),
            vtxos.len()
        ));
    }
    let mut own_leaves = Vec::new();
    let mut delegated_leaves = Vec::new();
    for ((_, is_own), (_, leaf)) in vtxos.iter().zip(conns.iter()) {
        if *is_own {
            own_leaves.push(*leaf);
        } else {
            delegated_leaves.push(*leaf);
        }
    }
    let mut out = Vec::new();
    if !own.is_empty() {
        let kp = *ctx.relay;
        let relay = kp.x_only_public_key().0;
        out.extend(
            create_and_sign_forfeit_txs(
                move |_, msg| Ok(vec![(sign(&kp, &msg), relay)]),
                &own,
                &own_leaves,
                &ctx.terms.forfeit_address,
                dust,
            )
            .map_err(err)?,
        );
    }
    if !delegated.is_empty() {
        out.extend(complete_delegate_forfeit_txs(&delegated, &delegated_leaves).map_err(err)?);
    }
    Ok(out)
}

/// Signs the relay's boarding inputs of the commitment tx; `None` if the
/// in-round entries board nothing.
pub fn sign_boarding(
    entries: &[&Entry],
    commitment: &Psbt,
    ctx: &RoundCtx<'_>,
) -> Result<Option<Psbt>, String> {
    let mut onchain = Vec::new();
    for e in entries.iter().filter(|e| e.job.delegation.is_none()) {
        onchain.extend(relay_inputs(&e.job, ctx)?.1);
    }
    if onchain.is_empty() {
        return Ok(None);
    }
    let mut psbt = commitment.clone();
    let kp = *ctx.relay;
    let relay = kp.x_only_public_key().0;
    sign_commitment_psbt(
        move |pk: &XOnlyPublicKey, msg: &Message| {
            if *pk == relay {
                Ok(sign(&kp, msg))
            } else {
                Err(ark_core::Error::ad_hoc("not the relay's boarding input"))
            }
        },
        &mut psbt,
        &onchain,
    )
    .map_err(err)?;
    Ok(Some(psbt))
}

/// A relay job's `delete` intent (drops its queued registration at the
/// server; any proof over one of its inputs will do).
pub fn relay_delete_intent(job: &RoundJob, ctx: &RoundCtx<'_>) -> Result<(Psbt, String), String> {
    let (inputs, _) = relay_inputs(job, ctx)?;
    let outputs = job_outputs(job, ctx.server)
        .into_iter()
        .map(intent::Output::Offchain)
        .collect();
    let now = u64::try_from(ctx.now.0).unwrap_or(0);
    let kp = *ctx.relay;
    let relay = kp.x_only_public_key().0;
    let intent = intent::make_intent(
        move |_, msg| Ok(vec![(sign(&kp, &msg), relay)]),
        move |_, msg| Ok((sign(&kp, &msg), relay)),
        inputs,
        outputs,
        IntentMessage::Delete {
            expire_at: now + 120,
        },
    )
    .map_err(err)?;
    let message = intent.serialize_message().map_err(err)?;
    Ok((intent.proof, message))
}
