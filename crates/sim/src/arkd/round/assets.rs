//! Assets through batch rounds, as arkd's `RegisterIntent` and tree builder
//! handle them (research/ark-assets.md §7): an intent proof whose inputs hold
//! assets must carry the **asset preservation packet** (vin = proof input
//! index, so the first real input is 1) that passes the same asset rules as an
//! ark tx; an issuance inside an intent is refused; the packet becomes the
//! intent's **leaf packet** — every group keeps its id, metadata and outputs,
//! its inputs become one intent-type input `{0x02, proof txid, vin 0, amount
//! 0}` — which the leaf tx carries as an extension output between the VTXOs
//! and the anchor. The new VTXOs take their denominations from it by vout.
//!
//! The packet's vouts are proof output indexes copied unchanged into the leaf,
//! exactly as arkd does (the vout-alignment hazard of the note: they line up
//! only when every offchain output precedes the onchain ones and the
//! extension). The leaf encoding is written here because ark-core 0.12's
//! `AssetInput` has no intent type; everything else is ark-core's encoder.

use std::collections::BTreeMap;

use bitcoin::hashes::Hash;
use bitcoin::{Transaction, TxOut, Txid};

use ark_relay_ark::asset::{tx_packet, AssetGroup, Packet, PacketError, ASSET_PACKET_TYPE};

use crate::arkd::assets::{self as tx_assets, AssetRecord, Denominations, Rules};
use crate::arkd::state::{code, SimError};

/// What a registered intent's packet means for its leaf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntentAssets {
    /// The leaf tx's extension output (`None` without a packet).
    pub leaf_extension: Option<TxOut>,
    /// Per leaf vout, the assets the new VTXO there holds.
    pub outputs: BTreeMap<u32, Denominations>,
}

fn invalid(name: &str, msg: impl Into<String>) -> SimError {
    SimError::new(code::INVALID_ARGUMENT, name, msg)
}

/// arkd's asset checks of an intent proof. `inputs[vin]` are the assets held
/// by the VTXO spent at proof input `vin` (boarding inputs hold none).
pub fn check_intent(
    proof: &Transaction,
    inputs: &BTreeMap<u16, Denominations>,
    table: &BTreeMap<String, AssetRecord>,
) -> Result<IntentAssets, SimError> {
    let packet = match tx_packet(proof) {
        Ok(p) => p.map(|(_, p)| p),
        Err(PacketError::MultipleExtensions) => {
            return Err(invalid(
                "INVALID_INTENT_PSBT",
                "intent proof has several extension outputs",
            ))
        }
        Err(e) => return Err(invalid(e.arkd_name(), e.to_string())),
    };
    if packet
        .as_ref()
        .is_some_and(|p| p.groups.iter().any(|g| g.asset_id.is_none()))
    {
        return Err(invalid(
            "INVALID_INTENT_PROOF",
            "intent contains asset issuance",
        ));
    }
    // The ark-tx rules over the proof (no anchor, so no op-return budget).
    tx_assets::validate(proof, inputs, table, usize::MAX, Rules::Full)?;
    let Some(packet) = packet else {
        return Ok(IntentAssets::default());
    };
    let txid = proof.compute_txid();
    Ok(IntentAssets {
        leaf_extension: Some(leaf_txout(txid, &packet)),
        outputs: ark_relay_ark::asset::output_assets(txid, &packet),
    })
}

/// The leaf packet of an intent whose proof is `proof_txid` (arkd
/// `Packet.LeafTxPacket`), as the extension output of the leaf tx.
pub fn leaf_txout(proof_txid: Txid, packet: &Packet) -> TxOut {
    let mut payload = Vec::new();
    ark_core::extension::encode_uvarint(&mut payload, packet.groups.len() as u64);
    for g in &packet.groups {
        payload.extend(leaf_group(proof_txid, g));
    }
    ark_core::extension::packet_txout(ASSET_PACKET_TYPE, &payload)
}

/// One group of the leaf packet: ark-core's encoding of the group with its
/// inputs replaced by the single intent input.
fn leaf_group(proof_txid: Txid, g: &AssetGroup) -> Vec<u8> {
    let encode = |outputs: bool| {
        let group = AssetGroup {
            asset_id: g.asset_id,
            control_asset: g.control_asset.clone(),
            metadata: g.metadata.clone(),
            inputs: Vec::new(),
            outputs: if outputs {
                g.outputs.clone()
            } else {
                Vec::new()
            },
        };
        // Strip the packet's group count (1 → one byte).
        Packet {
            groups: vec![group],
        }
        .encode()
        .split_off(1)
    };
    let full = encode(true);
    let bare = encode(false);
    // bare = header ‖ 0x00 (no inputs) ‖ 0x00 (no outputs)
    let header = bare.len().saturating_sub(2);
    let mut out = full[..header].to_vec();
    out.push(1); // one input
    out.push(0x02); // intent type
    let mut display = proof_txid.to_byte_array();
    display.reverse();
    out.extend_from_slice(&display);
    out.extend_from_slice(&0u16.to_le_bytes()); // vin 0
    out.push(0); // amount 0
    out.extend_from_slice(&full[header + 1..]); // outputs
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_relay_ark::asset::{ArkadeAssetId, AssetInput, AssetOutput};

    fn id(b: u8) -> ArkadeAssetId {
        ArkadeAssetId {
            txid: Txid::from_byte_array([b; 32]),
            group_index: 1,
        }
    }

    #[test]
    fn the_leaf_packet_keeps_ids_and_outputs_and_names_the_proof() {
        let proof_txid = Txid::from_byte_array([7; 32]);
        let packet = Packet {
            groups: vec![AssetGroup {
                asset_id: Some(id(9)),
                control_asset: None,
                metadata: None,
                inputs: vec![AssetInput {
                    input_index: 1,
                    amount: 400,
                }],
                outputs: vec![AssetOutput {
                    output_index: 0,
                    amount: 400,
                }],
            }],
        };
        let out = leaf_txout(proof_txid, &packet);
        assert_eq!(out.value.to_sat(), 0);
        let payload =
            ark_core::extension::extension_payload(&out.script_pubkey).expect("an extension");
        let records = ark_core::extension::iter_packets(payload).expect("records");
        assert_eq!(records.len(), 1);
        let (t, body) = records[0];
        assert_eq!(t, ASSET_PACKET_TYPE);
        let mut expected = vec![0x01, 0x01];
        expected.extend_from_slice(&[9; 32]);
        expected.extend_from_slice(&[1, 0]);
        expected.extend_from_slice(&[0x01, 0x02]);
        expected.extend_from_slice(&[7; 32]);
        expected.extend_from_slice(&[0, 0, 0]);
        expected.extend_from_slice(&[0x01, 0x01, 0, 0]);
        expected.extend_from_slice(&[0x90, 0x03]);
        assert_eq!(body, &expected[..]);
    }
}
