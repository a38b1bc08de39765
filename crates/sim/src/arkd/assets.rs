//! Arkade Assets in the arkd simulator (research/ark-assets.md §2, §5, §6):
//! the extension-output rules of `validateOffchainTxOutputs`, arkd's
//! `ValidateAssetTransaction` over an ark tx and its prevouts' assets, and
//! the bookkeeping after finalization (each new VTXO's denominations, the
//! asset table of issuances with their control asset).
//!
//! One deliberate difference from arkd, stricter: an issuance or reissuance
//! whose control asset is named must have that control asset's group in the
//! packet **with at least one input** (the control asset is really spent and
//! re-output). arkd only checks that such a group exists, so a group with no
//! inputs and no outputs would let anyone mint (research note §10.1); ark-core
//! already builds issuances this way.
//!
//! SubmitTx applies these rules as [`Rules::Full`] by default, arkd's
//! behaviour. `ArkdSimConfig::strict_assets` off makes it [`Rules::Bridged`]:
//! exactly as arkd for issuances and for every asset issued on Ark, leniently
//! for an asset id the simulator never saw issued (a bridged id).

use std::collections::BTreeMap;

use bitcoin::Transaction;

use ark_relay_ark::asset::{group_asset_id, tx_packet, ArkadeAssetId, AssetRef, Packet};
use ark_relay_ark::script::is_anchor;
use ark_relay_ark::tx::is_vtxo_output;

use super::error::{code, SimError};

/// arkd's default `MaxAssetsPerVtxo` (40 000 WU × 0.5, 180 WU per asset).
pub const MAX_ASSETS_PER_VTXO: usize = 110;

/// Denominations of one VTXO: (asset, amount).
pub type Denominations = Vec<(ArkadeAssetId, u64)>;

/// An asset arkd knows (issued by a finalized transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetRecord {
    /// The control asset named at issuance.
    pub control: Option<ArkadeAssetId>,
    /// Its metadata, as issued.
    pub metadata: Vec<(String, String)>,
}

fn invalid(name: &str, msg: impl Into<String>) -> SimError {
    SimError::new(code::INVALID_ARGUMENT, name, msg)
}

fn not_found(name: &str, msg: impl Into<String>) -> SimError {
    SimError::new(code::NOT_FOUND, name, msg)
}

/// Which of arkd's asset rules [`validate`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rules {
    /// All of them, as arkd: an asset arkd did not see issued cannot be
    /// reissued (`ASSET_VALIDATION_FAILED`), and a listed input must hold the
    /// asset it is listed with. The simulator's default.
    #[default]
    Full,
    /// All of them for issuances and for every asset arkd saw issued (in its
    /// asset table); for an asset it never saw issued (a *bridged* id: colour
    /// seeded outside Ark, e.g. by a test harness or a relay that has not run
    /// its genesis yet), the supply rules are skipped: its outputs may exceed
    /// its inputs and a listed input need not hold it. Every asset a spent
    /// VTXO holds must still be listed with its exact amount. SubmitTx's
    /// rules with [`super::ArkdSimConfig::strict_assets`] off.
    Bridged,
}

/// Validates the asset side of an ark tx: `prevouts[vin]` are the assets the
/// VTXO spent by ark-tx input `vin` holds, `table` the assets arkd knows.
/// Returns the packet, if any.
pub fn validate(
    tx: &Transaction,
    prevouts: &BTreeMap<u16, Denominations>,
    table: &BTreeMap<String, AssetRecord>,
    max_op_return_outputs: usize,
    rules: Rules,
) -> Result<Option<Packet>, SimError> {
    let full = rules == Rules::Full;
    // Supply rules apply to this asset (see `Rules::Bridged`).
    let checked = |id: &ArkadeAssetId| full || table.contains_key(&id.to_string());
    let op_returns = tx
        .output
        .iter()
        .filter(|o| o.script_pubkey.is_op_return())
        .count();
    if op_returns > max_op_return_outputs {
        return Err(invalid(
            "MALFORMED_ARK_TX",
            format!("too many op return outputs: {op_returns} > {max_op_return_outputs}"),
        ));
    }
    let packet = tx_packet(tx)
        .map_err(|e| invalid(e.arkd_name(), e.to_string()))?
        .map(|(_, p)| p);
    let holds_assets = prevouts.values().any(|d| !d.is_empty());
    let Some(packet) = packet else {
        if holds_assets {
            return Err(invalid(
                "ASSET_VALIDATION_FAILED",
                "asset packet not found in tx",
            ));
        }
        return Ok(None);
    };
    let txid = tx.compute_txid();
    let group_of = |id: &ArkadeAssetId| {
        packet
            .groups
            .iter()
            .enumerate()
            .find(|(i, g)| group_asset_id(txid, *i, g) == *id)
            .map(|(_, g)| g)
    };
    // Every asset of every input listed, with its exact amount.
    for (vin, list) in prevouts {
        for (id, amount) in list {
            let g = group_of(id).ok_or_else(|| {
                not_found(
                    "ASSET_NOT_FOUND",
                    format!("asset {id} of input {vin} not found in packet"),
                )
            })?;
            match g.inputs.iter().find(|i| i.input_index == *vin) {
                Some(i) if i.amount == *amount => {}
                Some(i) => {
                    return Err(invalid(
                        "ASSET_INPUT_INVALID",
                        format!("asset input mismatch prevout amount: input {vin} holds {amount} of {id}, packet says {}", i.amount),
                    ))
                }
                None => {
                    return Err(invalid(
                        "ASSET_INPUT_INVALID",
                        format!("input {vin} holding {id} is not listed in its group"),
                    ))
                }
            }
        }
    }
    // A control asset counts as present when its group spends it.
    let control_spent =
        |control: &ArkadeAssetId| group_of(control).is_some_and(|g| !g.inputs.is_empty());
    for (gi, g) in packet.groups.iter().enumerate() {
        let id = group_asset_id(txid, gi, g);
        if g.asset_id.is_none() {
            match &g.control_asset {
                None => {}
                Some(AssetRef::ByGroup(c)) => {
                    let ok = packet
                        .groups
                        .get(usize::from(*c))
                        .is_some_and(|cg| cg.asset_id.is_none());
                    if !ok {
                        return Err(invalid(
                            "CONTROL_ASSET_INVALID",
                            format!("control asset group {c} of {id} is not an issuance"),
                        ));
                    }
                }
                Some(AssetRef::ById(c)) => {
                    if !table.contains_key(&c.to_string()) {
                        return Err(not_found(
                            "CONTROL_ASSET_NOT_FOUND",
                            format!("control asset {c} not found"),
                        ));
                    }
                    if !control_spent(c) {
                        return Err(not_found(
                            "ASSET_NOT_FOUND",
                            format!("control asset {c} not found in the packet"),
                        ));
                    }
                }
            }
        } else if checked(&id) {
            let sum_in: u128 = g.inputs.iter().map(|i| u128::from(i.amount)).sum();
            let sum_out: u128 = g.outputs.iter().map(|o| u128::from(o.amount)).sum();
            if sum_out > sum_in {
                let record = table.get(&id.to_string()).ok_or_else(|| {
                    invalid(
                        "ASSET_VALIDATION_FAILED",
                        format!("reissuance of unknown asset {id}"),
                    )
                })?;
                let control = record.control.ok_or_else(|| {
                    invalid(
                        "CONTROL_ASSET_INVALID",
                        format!("asset {id} was issued without a control asset"),
                    )
                })?;
                if !control_spent(&control) {
                    return Err(not_found(
                        "ASSET_NOT_FOUND",
                        format!("control asset {control} not found in the packet"),
                    ));
                }
            }
        }
        for o in &g.outputs {
            let out = tx.output.get(usize::from(o.output_index)).ok_or_else(|| {
                invalid(
                    "ASSET_OUTPUT_INVALID",
                    format!("asset output {} out of range", o.output_index),
                )
            })?;
            if is_anchor(&out.script_pubkey) || !is_vtxo_output(&out.script_pubkey) {
                return Err(invalid(
                    "ASSET_OUTPUT_INVALID",
                    format!("output {} cannot receive assets", o.output_index),
                ));
            }
        }
        for i in &g.inputs {
            if usize::from(i.input_index) >= tx.input.len() {
                return Err(invalid(
                    "ASSET_INPUT_INVALID",
                    format!("asset input {} out of range", i.input_index),
                ));
            }
            let held = prevouts
                .get(&i.input_index)
                .is_some_and(|d| d.iter().any(|(a, n)| *a == id && *n == i.amount));
            if checked(&id) && !held {
                return Err(invalid(
                    "ASSET_INPUT_INVALID",
                    format!("input {} does not hold {} of {id}", i.input_index, i.amount),
                ));
            }
        }
    }
    for (vout, list) in ark_relay_ark::asset::output_assets(txid, &packet) {
        if list.len() > MAX_ASSETS_PER_VTXO {
            return Err(invalid(
                "VTXO_WITH_TOO_MANY_ASSETS",
                format!("output {vout} carries {} assets", list.len()),
            ));
        }
    }
    Ok(Some(packet))
}

/// After finalization: each output's denominations, and the issuances to add
/// to the asset table (control by group resolved to its id).
pub fn apply(
    tx: &Transaction,
    packet: &Packet,
) -> (
    BTreeMap<u32, Denominations>,
    Vec<(ArkadeAssetId, AssetRecord)>,
) {
    let txid = tx.compute_txid();
    let issued = packet
        .groups
        .iter()
        .enumerate()
        .filter(|(_, g)| g.asset_id.is_none())
        .map(|(i, g)| {
            let control = g.control_asset.as_ref().map(|c| match c {
                AssetRef::ById(id) => *id,
                AssetRef::ByGroup(n) => ArkadeAssetId {
                    txid,
                    group_index: *n,
                },
            });
            (
                group_asset_id(txid, i, g),
                AssetRecord {
                    control,
                    metadata: g.metadata.clone().unwrap_or_default(),
                },
            )
        })
        .collect();
    (ark_relay_ark::asset::output_assets(txid, packet), issued)
}
