//! Arkade Asset packets: the research note's worked example and arkd's fixture
//! byte for byte, round trips through ark-core's own types, and the decoder's
//! refusals (research/ark-assets.md §3, §11).

#![allow(clippy::unwrap_used)] // test harness: a failed step should panic

use ark_relay_ark::asset::{
    arkade_id, decode_leaf_packet, decode_packet, input_assets, ledger_id, output_assets,
    packet_for_colours, tx_packet, ArkadeAssetId, AssetGroup, AssetInput, AssetOutput, AssetRef,
    Packet, PacketError,
};
use ark_relay_core::{AssetAmount, AssetId, Colour};
use bitcoin::absolute::LockTime;
use bitcoin::transaction::Version;
use bitcoin::{Amount, ScriptBuf, Transaction, TxOut, Txid};
use proptest::prelude::*;

const X: &str = "58534acb681218c0fda8f6b6ae3b4cb5d8897e7c5fcba5792621c368b3db479c0000";
const WORKED_PACKET: &str = "010158534acb681218c0fda8f6b6ae3b4cb5d8897e7c5fcba5792621c368b3db479c000001010000dc0b03010000e807010100ea030102000a";
const WORKED_SCRIPT: &str = "6a3e41524b0039010158534acb681218c0fda8f6b6ae3b4cb5d8897e7c5fcba5792621c368b3db479c000001010000dc0b03010000e807010100ea030102000a";

fn x() -> ArkadeAssetId {
    X.parse().expect("fixture id")
}

fn out(i: u16, amount: u64) -> AssetOutput {
    AssetOutput {
        output_index: i,
        amount,
    }
}

fn worked() -> Packet {
    Packet {
        groups: vec![AssetGroup {
            asset_id: Some(x()),
            control_asset: None,
            metadata: None,
            inputs: vec![AssetInput {
                input_index: 0,
                amount: 1500,
            }],
            outputs: vec![out(0, 1000), out(1, 490), out(2, 10)],
        }],
    }
}

#[test]
fn worked_example_matches_byte_for_byte() {
    let p = worked();
    assert_eq!(hex::encode(p.encode()), WORKED_PACKET);
    assert_eq!(
        hex::encode(p.to_txout().script_pubkey.as_bytes()),
        WORKED_SCRIPT
    );
    let decoded = decode_packet(&hex::decode(WORKED_PACKET).unwrap()).unwrap();
    assert_eq!(decoded.encode(), p.encode());
    assert_eq!(decoded.groups[0].asset_id.unwrap().to_string(), X);
}

#[test]
fn arkd_fixture_self_controlled_issuance() {
    // pkg/ark-lib/extension/testdata: 21 000 000 units to vout 0, control asset = group 0 itself.
    let bytes = hex::decode("01020200000001010000c0de810a").unwrap();
    let p = decode_packet(&bytes).unwrap();
    let g = &p.groups[0];
    assert!(g.asset_id.is_none());
    assert!(matches!(g.control_asset, Some(AssetRef::ByGroup(0))));
    assert_eq!(g.outputs[0].amount, 21_000_000);
    assert_eq!(
        hex::encode(p.to_txout().script_pubkey.as_bytes()),
        "6a1341524b000e01020200000001010000c0de810a"
    );
    let txid: Txid = "11".repeat(32).parse().unwrap();
    let by_out = output_assets(txid, &p);
    assert_eq!(
        by_out[&0],
        vec![(
            ArkadeAssetId {
                txid,
                group_index: 0
            },
            21_000_000
        )]
    );
}

#[test]
fn ledger_ids_travel_as_group_zero() {
    let asset: AssetId = X[..64].parse().unwrap();
    let id = arkade_id(&asset);
    assert_eq!(id.to_string(), X);
    assert_eq!(ledger_id(&id), Some(asset));
}

#[test]
fn packet_for_colours_states_the_worked_transfer() {
    let asset: AssetId = X[..64].parse().unwrap();
    let c = |n| {
        Some(Colour {
            asset,
            amount: AssetAmount::new(n),
        })
    };
    let p = packet_for_colours(&[c(1500), None], &[c(1000), c(490), c(10), None])
        .unwrap()
        .unwrap();
    assert_eq!(hex::encode(p.encode()), WORKED_PACKET);
    assert_eq!(input_assets(&p)[&0], vec![(x(), 1500)]);
    assert!(packet_for_colours(&[None], &[None]).unwrap().is_none());
}

fn refused(hex_packet: &str) -> PacketError {
    decode_packet(&hex::decode(hex_packet).unwrap()).expect_err(hex_packet)
}

#[test]
fn decoder_refuses_what_arkd_refuses() {
    // Trailing byte.
    assert!(matches!(
        refused(&format!("{WORKED_PACKET}00")),
        PacketError::Malformed(_)
    ));
    // Over-long LEB128 for the fee output (10 as 8a 00): decodes, not canonical.
    let long = WORKED_PACKET.replace("0102000a", "0102008a00");
    assert_eq!(refused(&long), PacketError::NotCanonical);
    // Presence bit 0x04 with an empty metadata list (what ark-core's `Some(vec![])` writes).
    let empty_meta = format!("0105{X}000001010000 01").replace(' ', "");
    assert_eq!(refused(&empty_meta), PacketError::NotCanonical);
    // An issuance group (no id) with an input.
    assert!(matches!(
        refused("0100010100000a01010000 0a".replace(' ', "").as_str()),
        PacketError::Malformed(_)
    ));
    // A zero output amount.
    assert!(matches!(
        refused("01000001010000 00".replace(' ', "").as_str()),
        PacketError::Malformed(_)
    ));
    // Duplicate vout in one group.
    assert!(matches!(
        refused("010000020100000101000001"),
        PacketError::Malformed(_)
    ));
    // No groups; an empty issuance group.
    assert!(matches!(refused("00"), PacketError::Malformed(_)));
    assert!(matches!(refused("01000000"), PacketError::Malformed(_)));
    // Intent-type input in an ark tx.
    let intent = format!("0101{X}0102{}0000010101000001", "22".repeat(32));
    assert_eq!(refused(&intent), PacketError::IntentInput);
    // Control asset by group index out of range.
    assert!(matches!(
        refused("0102020500000101000001"),
        PacketError::Malformed(_)
    ));
}

fn tx(outputs: Vec<TxOut>) -> Transaction {
    Transaction {
        version: Version(3),
        lock_time: LockTime::ZERO,
        input: vec![],
        output: outputs,
    }
}

#[test]
fn one_extension_output_of_value_zero() {
    let vtxo = TxOut {
        value: Amount::from_sat(330),
        script_pubkey: ScriptBuf::new_op_return([7u8; 32]),
    };
    let ext = worked().to_txout();
    let (vout, p) = tx_packet(&tx(vec![vtxo.clone(), ext.clone()]))
        .unwrap()
        .unwrap();
    assert_eq!(vout, 1);
    assert_eq!(p.encode(), worked().encode());
    assert_eq!(tx_packet(&tx(vec![vtxo])).unwrap().map(|x| x.0), None);
    let two = tx(vec![ext.clone(), ext.clone()]);
    assert_eq!(
        tx_packet(&two).unwrap_err(),
        PacketError::MultipleExtensions
    );
    assert_eq!(tx_packet(&two).unwrap_err().arkd_name(), "MALFORMED_ARK_TX");
    let mut valued = ext;
    valued.value = Amount::from_sat(1);
    assert!(matches!(
        tx_packet(&tx(vec![valued])).unwrap_err(),
        PacketError::ExtensionValue { vout: 0, sats: 1 }
    ));
}

fn arb_id() -> impl Strategy<Value = ArkadeAssetId> {
    (any::<[u8; 32]>(), any::<u16>())
        .prop_filter("non-zero txid", |(t, _)| *t != [0u8; 32])
        .prop_map(|(t, g)| {
            use bitcoin::hashes::Hash;
            ArkadeAssetId {
                txid: Txid::from_byte_array(t),
                group_index: g,
            }
        })
}

fn arb_group() -> impl Strategy<Value = AssetGroup> {
    (
        arb_id(),
        proptest::collection::btree_map(any::<u16>(), any::<u64>(), 0..4),
        proptest::collection::btree_map(any::<u16>(), 1..u64::MAX, 0..4),
        proptest::option::of(proptest::collection::vec(
            ("[a-z]{1,8}", "[ -~]{1,16}"),
            1..3,
        )),
    )
        .prop_map(|(id, ins, outs, metadata)| AssetGroup {
            asset_id: Some(id),
            control_asset: None,
            metadata,
            inputs: ins
                .into_iter()
                .map(|(input_index, amount)| AssetInput {
                    input_index,
                    amount,
                })
                .collect(),
            outputs: outs.into_iter().map(|(i, a)| out(i, a)).collect(),
        })
}

proptest! {
    /// Packets built with ark-core's own types decode to the same groups.
    #[test]
    fn ark_core_packets_round_trip(
        groups in proptest::collection::vec(arb_group(), 1..4),
        issue in proptest::collection::btree_map(any::<u16>(), 1..u64::MAX, 1..3),
    ) {
        let mut groups = groups;
        // Distinct asset ids, as arkd requires.
        let mut seen = std::collections::BTreeSet::new();
        groups.retain(|g| seen.insert(g.asset_id.map(|i| i.to_string())));
        let n = u16::try_from(groups.len()).unwrap();
        groups.push(AssetGroup {
            asset_id: None,
            control_asset: Some(AssetRef::ByGroup(n)),
            metadata: None,
            inputs: vec![],
            outputs: issue.into_iter().map(|(i, a)| out(i, a)).collect(),
        });
        let p = Packet { groups };
        let bytes = p.encode();
        let back = decode_packet(&bytes).unwrap();
        prop_assert_eq!(back.encode(), bytes);
        prop_assert_eq!(back.groups.len(), p.groups.len());
        for (a, b) in back.groups.iter().zip(&p.groups) {
            prop_assert_eq!(a.asset_id, b.asset_id);
            prop_assert_eq!(&a.metadata, &b.metadata);
            prop_assert_eq!(
                a.outputs.iter().map(|o| (o.output_index, o.amount)).collect::<Vec<_>>(),
                b.outputs.iter().map(|o| (o.output_index, o.amount)).collect::<Vec<_>>()
            );
            prop_assert_eq!(
                a.inputs.iter().map(|o| (o.input_index, o.amount)).collect::<Vec<_>>(),
                b.inputs.iter().map(|o| (o.input_index, o.amount)).collect::<Vec<_>>()
            );
        }
    }

    /// Arbitrary bytes never panic the decoder, and what it accepts re-encodes to itself.
    #[test]
    fn decoder_total(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        if let Ok(p) = decode_packet(&bytes) {
            prop_assert_eq!(p.encode(), bytes);
        }
    }
}

/// Cost of the packet work a transfer adds (state the colour movement as a
/// packet, encode it, decode and check it as arkd and the wallet do) next to
/// one BIP-340 verification. Run with
/// `cargo test --release -p ark-relay-ark --test asset_packet -- --ignored --nocapture`.
#[test]
#[ignore = "timing; run in release"]
fn packet_cost_next_to_a_signature_check() {
    use bitcoin::secp256k1::{Keypair, Message, Secp256k1, SecretKey};
    use std::time::Instant;
    let n = 20_000u32;
    let asset: AssetId = X[..64].parse().unwrap();
    let c = |a| {
        Some(Colour {
            asset,
            amount: AssetAmount::new(a),
        })
    };
    let start = Instant::now();
    for i in 0..n {
        let p = packet_for_colours(
            &[c(1500 + u64::from(i)), None],
            &[c(1000), c(490 + u64::from(i)), c(10), None],
        )
        .unwrap()
        .unwrap();
        let out = p.to_txout();
        let t = tx(vec![out]);
        let (_, back) = tx_packet(&t).unwrap().unwrap();
        assert_eq!(output_assets(t.compute_txid(), &back).len(), 3);
    }
    let packet_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    let secp = Secp256k1::new();
    let kp = Keypair::from_secret_key(&secp, &SecretKey::from_slice(&[7; 32]).unwrap());
    let msg = Message::from_digest([9; 32]);
    let sig = secp.sign_schnorr_no_aux_rand(&msg, &kp);
    let pk = kp.x_only_public_key().0;
    let start = Instant::now();
    for _ in 0..n {
        secp.verify_schnorr(&sig, &msg, &pk).unwrap();
    }
    let verify_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    println!(
        "packet build+encode+decode+read: {packet_us:.2} µs; BIP-340 verify: {verify_us:.2} µs; ratio {:.3}",
        packet_us / verify_us
    );
    assert!(packet_us > 0.0 && verify_us > 0.0);
}

#[test]
fn metadata_and_genesis_packets_round_trip_canonically() {
    use ark_relay_ark::asset::{
        asset_metadata, control_arkade_id, control_ledger_id, decode_metadata, encode_metadata,
        genesis_packet, meta, IdMap,
    };
    let taproot = AssetId::from_bytes([7; 32]);
    let list = asset_metadata("Relay-issued BTC", "gBTC", 0, Some(&taproot));
    assert_eq!(
        list[3],
        (meta::TAPROOT_ASSET_ID.to_owned(), "07".repeat(32))
    );
    let bytes = encode_metadata(&list);
    assert_eq!(bytes[0], 4, "entry count first");
    assert_eq!(decode_metadata(&bytes).unwrap(), list);
    assert!(decode_metadata(&[1, 0, 1, b'x']).is_err(), "empty key");

    let p = genesis_packet(0, 1, 1, list.clone()).unwrap();
    assert_eq!(decode_packet(&p.encode()).unwrap().encode(), p.encode());
    assert_eq!(p.groups[0].metadata.as_ref(), Some(&list));
    assert!(genesis_packet(0, 0, 1, vec![]).is_err());
    assert!(genesis_packet(1, 5, 1, vec![]).is_err());

    let asset = AssetId::from_bytes([9; 32]);
    let ids = IdMap::bridged().with_control(&asset);
    assert_eq!(ids.arkade(&asset), arkade_id(&asset));
    assert_eq!(
        ids.arkade(&control_ledger_id(&asset)),
        control_arkade_id(&asset)
    );
    assert_eq!(control_arkade_id(&asset).group_index, 1);
    assert_ne!(control_ledger_id(&asset), asset);
}

/// A batch leaf's packet (arkd `LeafTxPacket`): each group's inputs are one
/// intent-type input naming the intent proof; the outputs keep the colour.
fn leaf_bytes(input_type: u8) -> Vec<u8> {
    use bitcoin::hashes::Hash;
    let mut b = vec![0x01, 0x01]; // one group; presence: asset id
    let mut display = x().txid.to_byte_array();
    display.reverse();
    b.extend_from_slice(&display);
    b.extend_from_slice(&x().group_index.to_le_bytes());
    b.extend_from_slice(&[0x01, input_type]); // one input
    b.extend_from_slice(&[0xab; 32]); // the intent proof's txid
    b.extend_from_slice(&[0x00, 0x00, 0x00]); // vin 0, amount 0
    b.extend_from_slice(&[0x01, 0x01, 0x00, 0x00, 0xdc, 0x0b]); // vout 0: 1500
    b
}

#[test]
fn a_leaf_packet_decodes_to_its_outputs_colour() {
    use bitcoin::hashes::Hash;
    let packet = decode_leaf_packet(&leaf_bytes(0x02)).unwrap();
    assert_eq!(packet.groups.len(), 1);
    assert_eq!(packet.groups[0].asset_id, Some(x()));
    assert!(packet.groups[0].inputs.is_empty());
    let colours = output_assets(Txid::all_zeros(), &packet);
    assert_eq!(colours.get(&0), Some(&vec![(x(), 1500)]));
    // An ark tx's packet may not carry intent inputs; a leaf's may not carry
    // local ones.
    assert!(matches!(
        decode_packet(&leaf_bytes(0x02)),
        Err(PacketError::IntentInput)
    ));
    assert!(decode_leaf_packet(&leaf_bytes(0x01)).is_err());
    // Truncated anywhere: an error, never a panic.
    let full = leaf_bytes(0x02);
    for n in 0..full.len() {
        assert!(decode_leaf_packet(&full[..n]).is_err(), "prefix {n}");
    }
}
