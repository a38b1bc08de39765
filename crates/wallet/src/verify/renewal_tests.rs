//! Unit tests of the renewal check: an honest delegation (built with ark-core
//! 0.12 `prepare_delegate_psbts_at`, as the relay builds it) is signed with
//! the owner's key (proof SIGHASH_DEFAULT, forfeit 0x81); one that changes
//! owner, amount or asset, overcharges, or names another cosigner is refused.

use super::*;
use ark_core::batch::prepare_delegate_psbts_at;
use ark_core::intent;
use ark_relay_ark::asset::{ArkadeAssetId, AssetGroup, AssetInput, AssetOutput, Packet};
use ark_relay_ark::{RelativeLocktime, VtxoScript};
use ark_relay_core::{AssetId, Sats, VtxoId};
use ark_relay_protocol::renewal::RenewalAsset;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{PublicKey, SecretKey};
use bitcoin::{Address, Amount, Network, Sequence, TxOut, Txid};

const SATS: u64 = 10_000;
const NOW: i64 = 1_700_000_000;

fn kp(b: u8) -> Keypair {
    Keypair::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&[b; 32]).unwrap())
}

fn server() -> ServerInfo {
    ServerInfo::new(
        kp(0x51).x_only_public_key().0,
        kp(0x52).x_only_public_key().0,
        RelativeLocktime::seconds(86_528).unwrap(),
        RelativeLocktime::seconds(512).unwrap(),
        Sats::new(330),
        Network::Regtest,
    )
}

fn asset() -> AssetId {
    AssetId::from_bytes([0xA5; 32])
}

struct Fixture {
    owner: Keypair,
    relay_cosigner: PublicKey,
    server: ServerInfo,
    vtxo: VtxoId,
}

impl Fixture {
    fn new() -> Self {
        Self {
            owner: kp(0x11),
            relay_cosigner: kp(0x33).public_key(),
            server: server(),
            vtxo: VtxoId::new(Txid::from_byte_array([7; 32]), 1),
        }
    }

    fn pk(&self) -> PubKey {
        PubKey::from_x_only(self.owner.x_only_public_key().0)
    }

    fn owned(&self, colour: u64) -> Vec<OwnedVtxo> {
        vec![OwnedVtxo {
            vtxo: self.vtxo,
            sats: SATS,
            asset_id: (colour > 0).then(asset),
            ticker: None,
            amount: colour,
            expires_at: Some(NOW + 1000),
            tapscripts: Default::default(),
            locked: false,
        }]
    }

    /// The challenge the relay sends, with knobs to tamper with it.
    fn challenge(&self, t: Tamper) -> RenewalChallenge {
        let script: VtxoScript = self.server.default_vtxo(&self.pk());
        let leaf = script
            .collaborative_leaf(&self.owner.x_only_public_key().0, self.server.signer())
            .unwrap()
            .clone();
        let control = script.control_block(&leaf).unwrap();
        let prevout = TxOut {
            value: Amount::from_sat(SATS),
            script_pubkey: script.script_pubkey(),
        };
        let id = ark_relay_ark::asset::arkade_id(&asset());
        let assets = vec![ark_core::server::Asset {
            asset_id: id,
            amount: t.colour,
        }];
        let input = intent::Input::new(
            self.vtxo.outpoint(),
            Sequence::MAX,
            None,
            prevout.clone(),
            script.leaves().to_vec(),
            (leaf, control),
            false,
            false,
            if t.colour > 0 { assets } else { Vec::new() },
        );
        let to =
            t.to.map(|k| self.server.default_vtxo(&k).script_pubkey())
                .unwrap_or_else(|| prevout.script_pubkey.clone());
        let mut outputs = vec![intent::Output::Offchain(TxOut {
            value: Amount::from_sat(SATS - t.fee - t.skim),
            script_pubkey: to,
        })];
        if t.colour > 0 {
            let packet = Packet {
                groups: vec![AssetGroup {
                    asset_id: Some(t.packet_asset.unwrap_or(id)),
                    control_asset: None,
                    metadata: None,
                    inputs: vec![AssetInput {
                        input_index: 1,
                        amount: t.colour,
                    }],
                    outputs: vec![AssetOutput {
                        output_index: 0,
                        amount: t.colour - t.packet_skim,
                    }],
                }],
            };
            outputs.push(intent::Output::AssetPacket(packet.to_txout()));
        }
        let forfeit_address = Address::p2tr(
            &Secp256k1::new(),
            *self.server.forfeit_key(),
            None,
            Network::Regtest,
        );
        let valid_at = NOW + 900;
        let d = prepare_delegate_psbts_at(
            vec![input],
            outputs,
            t.cosigner.unwrap_or(self.relay_cosigner),
            &forfeit_address,
            Amount::from_sat(330),
            Some(valid_at as u64),
        )
        .unwrap();
        let b64 = |p: &Psbt| base64::engine::general_purpose::STANDARD.encode(p.serialize());
        RenewalChallenge {
            v: 1,
            challenge_type: RenewalType::SignRenewal,
            renewal_id: format!("renew:{}", self.vtxo),
            vtxo: self.vtxo,
            owner: self.pk(),
            sats: SATS,
            assets: if t.colour > 0 {
                vec![RenewalAsset {
                    asset_id: id.to_string(),
                    amount: t.colour,
                }]
            } else {
                Vec::new()
            },
            vtxo_expires_at: NOW + 1000,
            valid_at,
            recovery: false,
            intent_proof: b64(&d.intent.proof),
            intent_message: d.intent.serialize_message().unwrap(),
            forfeit_psbts: d.forfeit_psbts.iter().map(b64).collect(),
            delegate_cosigner_pk: self.relay_cosigner.to_string(),
            fee: t.fee,
            human_readable_context: "renew".into(),
            expires_at: NOW + 60,
        }
    }

    fn ctx<'a>(&'a self, owner: &'a PubKey, vtxos: &'a [OwnedVtxo]) -> RenewalContext<'a> {
        RenewalContext {
            owner,
            server: &self.server,
            vtxos,
            max_fee: 50,
            now: NOW,
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Tamper {
    colour: u64,
    fee: u64,
    skim: u64,
    packet_skim: u64,
    to: Option<PubKey>,
    packet_asset: Option<ArkadeAssetId>,
    cosigner: Option<PublicKey>,
}

#[test]
fn an_honest_renewal_is_signed_proof_default_forfeit_anyone_can_pay() {
    let f = Fixture::new();
    let owner = f.pk();
    let vtxos = f.owned(400);
    let ch = f.challenge(Tamper {
        colour: 400,
        fee: 20,
        ..Tamper::default()
    });
    let resp = answer_renewal(&f.ctx(&owner, &vtxos), &f.owner, &ch);
    assert_eq!(resp.reject, None);
    assert_eq!(resp.renewal_id, ch.renewal_id);
    // Proof inputs 0 and 1 (64-byte sigs), the forfeit's VTXO input (65, 0x81).
    let proof: Vec<_> = resp
        .signatures
        .iter()
        .filter(|s| s.psbt_index == 0)
        .collect();
    assert_eq!(proof.len(), 2);
    assert!(proof.iter().all(|s| s.sig.len() == 128));
    let forfeit: Vec<_> = resp
        .signatures
        .iter()
        .filter(|s| s.psbt_index == 1)
        .collect();
    assert_eq!(forfeit.len(), 1);
    assert_eq!(forfeit[0].sig.len(), 130);
    assert!(forfeit[0].sig.ends_with("81"));
}

#[test]
fn a_renewal_to_another_owner_is_refused() {
    let f = Fixture::new();
    let owner = f.pk();
    let vtxos = f.owned(0);
    let thief = PubKey::from_x_only(kp(0x66).x_only_public_key().0);
    let ch = f.challenge(Tamper {
        to: Some(thief),
        ..Tamper::default()
    });
    let r = verify_renewal(&f.ctx(&owner, &vtxos), &ch).unwrap_err();
    assert!(r.mentions("not mine"), "{r}");
    let resp = answer_renewal(&f.ctx(&owner, &vtxos), &f.owner, &ch);
    assert!(resp.signatures.is_empty() && resp.reject.is_some());
}

#[test]
fn a_renewal_that_takes_sats_beyond_the_stated_fee_is_refused() {
    let f = Fixture::new();
    let owner = f.pk();
    let vtxos = f.owned(0);
    let ch = f.challenge(Tamper {
        skim: 100,
        ..Tamper::default()
    });
    let r = verify_renewal(&f.ctx(&owner, &vtxos), &ch).unwrap_err();
    assert!(r.mentions("renewed VTXO has"), "{r}");
}

#[test]
fn a_fee_above_the_published_renewal_fee_is_refused() {
    let f = Fixture::new();
    let owner = f.pk();
    let vtxos = f.owned(0);
    let ch = f.challenge(Tamper {
        fee: 51,
        ..Tamper::default()
    });
    let r = verify_renewal(&f.ctx(&owner, &vtxos), &ch).unwrap_err();
    assert!(r.mentions("above the published"), "{r}");
}

#[test]
fn a_renewal_that_drops_or_swaps_the_asset_is_refused() {
    let f = Fixture::new();
    let owner = f.pk();
    let vtxos = f.owned(400);
    let less = f.challenge(Tamper {
        colour: 400,
        packet_skim: 1,
        ..Tamper::default()
    });
    let r = verify_renewal(&f.ctx(&owner, &vtxos), &less).unwrap_err();
    assert!(r.mentions("unchanged to me"), "{r}");
    let other = ArkadeAssetId {
        txid: Txid::from_byte_array([9; 32]),
        group_index: 0,
    };
    let swapped = f.challenge(Tamper {
        colour: 400,
        packet_asset: Some(other),
        ..Tamper::default()
    });
    let r = verify_renewal(&f.ctx(&owner, &vtxos), &swapped).unwrap_err();
    assert!(r.mentions("assets are not the VTXO's"), "{r}");
    // The relay states no asset for a coloured VTXO (and builds no packet).
    let mut hidden = f.challenge(Tamper::default());
    hidden.assets.clear();
    let r = verify_renewal(&f.ctx(&owner, &vtxos), &hidden).unwrap_err();
    assert!(r.mentions("challenge's assets are not the VTXO's"), "{r}");
}

#[test]
fn a_renewal_for_another_owner_or_cosigner_or_too_late_is_refused() {
    let f = Fixture::new();
    let owner = f.pk();
    let vtxos = f.owned(0);
    let mut ch = f.challenge(Tamper {
        cosigner: Some(kp(0x77).public_key()),
        ..Tamper::default()
    });
    let r = verify_renewal(&f.ctx(&owner, &vtxos), &ch).unwrap_err();
    assert!(r.mentions("cosigner"), "{r}");
    ch = f.challenge(Tamper::default());
    ch.vtxo_expires_at = ch.valid_at;
    let r = verify_renewal(&f.ctx(&owner, &vtxos), &ch).unwrap_err();
    assert!(r.mentions("after the VTXO expires"), "{r}");
    let stranger = PubKey::from_x_only(kp(0x12).x_only_public_key().0);
    let ch = f.challenge(Tamper::default());
    let r = verify_renewal(&f.ctx(&stranger, &vtxos), &ch).unwrap_err();
    assert!(r.mentions("another owner"), "{r}");
}
