//! Arkade Assets through SubmitTx / FinalizeTx / GetAsset: `ArkdClient` against
//! the arkd simulator over a real gRPC socket. An asset issued on Ark under a
//! control asset is checked exactly as arkd checks it (research/ark-assets.md
//! §5): reissuance only with the control asset spent, no inflation by a
//! holder, no asset input spent without a packet, one extension output; and
//! `GetAsset` reports its supply, metadata and control asset.

use std::error::Error;

use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
use bitcoin::Psbt;

use ark_relay_ark::asset::{
    asset_metadata, decode_metadata, ArkadeAssetId, AssetGroup, AssetInput, AssetOutput, AssetRef,
    Packet,
};
use ark_relay_ark::{
    build_offchain_tx, sign_psbt, OffchainTx, Output, RelativeLocktime, ServerInfo, VtxoInput,
};
use ark_relay_core::backends::ark::{ArkRejection, ArkServer, ArkServerError, VtxoQuery};
use ark_relay_core::{AssetId, PubKey, Sats, VtxoId};
use ark_relay_grpc::arkd::ArkdClient;
use ark_relay_sim::{SimOptions, SimStack};

type R = Result<(), Box<dyn Error>>;

fn key(b: u8) -> Keypair {
    Keypair::from_secret_key(
        &Secp256k1::new(),
        &SecretKey::from_slice(&[b; 32]).expect("valid key"),
    )
}

fn pk(k: &Keypair) -> PubKey {
    PubKey::from_x_only(k.x_only_public_key().0)
}

struct Env {
    stack: SimStack,
    client: ArkdClient,
    server: ServerInfo,
}

async fn env() -> Result<Env, Box<dyn Error>> {
    let stack = SimStack::start(SimOptions::default()).await?;
    let client = ArkdClient::connect(stack.endpoints().arkd).await?;
    let info = client.get_info().await?;
    let server = ServerInfo::from_get_info(
        info.signer_pubkey.x_only_public_key().0,
        info.forfeit_pubkey.x_only_public_key().0,
        info.checkpoint_tapscript,
        RelativeLocktime::from_server_value(info.unilateral_exit_delay)?,
        info.dust,
        info.network,
    )?;
    Ok(Env {
        stack,
        client,
        server,
    })
}

fn group(asset_id: Option<ArkadeAssetId>, ins: &[(u16, u64)], outs: &[(u16, u64)]) -> AssetGroup {
    AssetGroup {
        asset_id,
        control_asset: None,
        metadata: None,
        inputs: ins
            .iter()
            .map(|&(input_index, amount)| AssetInput {
                input_index,
                amount,
            })
            .collect(),
        outputs: outs
            .iter()
            .map(|&(output_index, amount)| AssetOutput {
                output_index,
                amount,
            })
            .collect(),
    }
}

impl Env {
    fn fund(&self, owner: &Keypair, sats: u64) -> Result<VtxoInput, Box<dyn Error>> {
        let v = self.stack.arkd.fund(&pk(owner), Sats::new(sats));
        self.input(owner, VtxoId::from(v.outpoint), sats)
    }

    fn input(&self, owner: &Keypair, id: VtxoId, sats: u64) -> Result<VtxoInput, Box<dyn Error>> {
        let owner = pk(owner);
        Ok(VtxoInput::collaborative(
            id,
            Sats::new(sats),
            self.server.default_vtxo(&owner),
            &owner,
            self.server.signer(),
        )?)
    }

    /// The ark tx of `inputs` paying `outputs`, then `packets`, signed by `signer`.
    fn build(
        &self,
        inputs: &[VtxoInput],
        outputs: &[(&Keypair, u64)],
        packets: &[&Packet],
        signer: &Keypair,
    ) -> Result<OffchainTx, Box<dyn Error>> {
        let mut outs: Vec<Output> = outputs
            .iter()
            .map(|(k, sats)| Output::Vtxo {
                owner: pk(k),
                sats: Sats::new(*sats),
            })
            .collect();
        outs.extend(packets.iter().map(|p| Output::Raw(p.to_txout())));
        let mut tx = build_offchain_tx(&self.server, inputs, &outs)?;
        sign_psbt(&mut tx.ark_tx, signer)?;
        Ok(tx)
    }

    /// SubmitTx, the owner's checkpoint signatures, FinalizeTx.
    async fn settle(&self, tx: &OffchainTx, signer: &Keypair) -> R {
        let submitted = self.client.submit_tx(&tx.ark_tx, &tx.checkpoints).await?;
        let signed: Vec<Psbt> = submitted
            .signed_checkpoint_txs
            .iter()
            .map(|cp| {
                let mut cp = cp.clone();
                sign_psbt(&mut cp, signer).map(|_| cp)
            })
            .collect::<Result<_, _>>()?;
        self.client.finalize_tx(submitted.ark_txid, &signed).await?;
        Ok(())
    }

    /// The arkd error name SubmitTx refuses `tx` with.
    async fn refused(&self, tx: &OffchainTx) -> Result<String, Box<dyn Error>> {
        let e: ArkServerError = self
            .client
            .submit_tx(&tx.ark_tx, &tx.checkpoints)
            .await
            .err()
            .ok_or("submission accepted")?;
        Ok(e.rejection()
            .map(ArkRejection::name)
            .unwrap_or("not a rejection")
            .to_owned())
    }
}

#[tokio::test]
async fn supply_rules_hold_for_an_asset_issued_under_a_control_asset() -> R {
    let env = env().await?;
    let (relay, alice, bob) = (key(1), key(2), key(3));

    // Genesis: group 0 issues 1 000 to alice, controlled by group 1, which
    // issues the control asset (1 unit) to the relay.
    let taproot = AssetId::from_bytes([0x42; 32]);
    let metadata = asset_metadata("Relay-issued BTC", "gBTC", 0, Some(&taproot));
    let mut issue = group(None, &[], &[(0, 1_000)]);
    issue.control_asset = Some(AssetRef::ByGroup(1));
    issue.metadata = Some(metadata.clone());
    let genesis = Packet {
        groups: vec![issue, group(None, &[], &[(1, 1)])],
    };
    let r1 = env.fund(&relay, 10_000)?;
    let tx = env.build(
        &[r1],
        &[(&alice, 330), (&relay, 330), (&relay, 9_340)],
        &[&genesis],
        &relay,
    )?;
    env.settle(&tx, &relay).await?;
    let t = tx.ark_txid();
    let asset = ArkadeAssetId {
        txid: t,
        group_index: 0,
    };
    let control = ArkadeAssetId {
        txid: t,
        group_index: 1,
    };

    let info = env.client.get_asset(&asset.to_string()).await?;
    assert_eq!(info.supply, 1_000);
    assert_eq!(info.control_asset, Some(control.to_string()));
    assert_eq!(
        decode_metadata(&hex::decode(&info.metadata_hex)?)?,
        metadata
    );
    let info = env.client.get_asset(&control.to_string()).await?;
    assert_eq!((info.supply, info.control_asset), (1, None));
    assert!(info.metadata_hex.is_empty());
    assert!(
        env.client
            .get_asset(&format!("{}0000", "ab".repeat(32)))
            .await
            .is_err(),
        "an asset never issued is unknown"
    );

    // The indexer reports each VTXO's assets.
    let alices_id = VtxoId::new(t, 0);
    let listed = env
        .client
        .get_vtxos(&VtxoQuery::Outpoints(vec![alices_id, VtxoId::new(t, 1)]))
        .await?;
    let held: Vec<_> = listed
        .iter()
        .map(|v| {
            (
                v.id,
                v.assets
                    .iter()
                    .map(|a| (a.asset_id.clone(), a.amount))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    assert!(held.contains(&(alices_id, vec![(asset.to_string(), 1_000)])));
    assert!(held.contains(&(VtxoId::new(t, 1), vec![(control.to_string(), 1)])));

    let alices = env.input(&alice, alices_id, 330)?;
    let ctrl = env.input(&relay, VtxoId::new(t, 1), 330)?;
    let r2 = env.fund(&relay, 5_000)?;

    // Reissuance without the control asset.
    let mint = Packet {
        groups: vec![group(Some(asset), &[], &[(0, 5)])],
    };
    let tx = env.build(
        std::slice::from_ref(&r2),
        &[(&alice, 330), (&relay, 4_670)],
        &[&mint],
        &relay,
    )?;
    assert_eq!(env.refused(&tx).await?, "ASSET_NOT_FOUND");
    // A new issuance naming the control asset without spending it.
    let mut sneaky = group(None, &[], &[(0, 9)]);
    sneaky.control_asset = Some(AssetRef::ById(control));
    let tx = env.build(
        std::slice::from_ref(&r2),
        &[(&alice, 330), (&relay, 4_670)],
        &[&Packet {
            groups: vec![sneaky],
        }],
        &relay,
    )?;
    assert_eq!(env.refused(&tx).await?, "ASSET_NOT_FOUND");

    // A holder's outputs above its inputs (inflation).
    let inflate = Packet {
        groups: vec![group(Some(asset), &[(0, 1_000)], &[(0, 1_001)])],
    };
    let tx = env.build(
        std::slice::from_ref(&alices),
        &[(&bob, 330)],
        &[&inflate],
        &alice,
    )?;
    assert_eq!(env.refused(&tx).await?, "ASSET_NOT_FOUND");
    // An asset-bearing input spent without a packet.
    let tx = env.build(std::slice::from_ref(&alices), &[(&bob, 330)], &[], &alice)?;
    assert_eq!(env.refused(&tx).await?, "ASSET_VALIDATION_FAILED");
    // Two extension outputs.
    let pay = Packet {
        groups: vec![group(Some(asset), &[(0, 1_000)], &[(0, 1_000)])],
    };
    let tx = env.build(
        std::slice::from_ref(&alices),
        &[(&bob, 330)],
        &[&pay, &pay],
        &alice,
    )?;
    assert_eq!(env.refused(&tx).await?, "MALFORMED_ARK_TX");

    // Reissuance that spends the control asset and re-creates it: accepted.
    let mint = Packet {
        groups: vec![
            group(Some(asset), &[], &[(0, 5)]),
            group(Some(control), &[(0, 1)], &[(1, 1)]),
        ],
    };
    let tx = env.build(
        &[ctrl, r2],
        &[(&alice, 330), (&relay, 330), (&relay, 4_670)],
        &[&mint],
        &relay,
    )?;
    env.settle(&tx, &relay).await?;
    assert_eq!(
        env.client.get_asset(&asset.to_string()).await?.supply,
        1_005
    );
    assert_eq!(env.client.get_asset(&control.to_string()).await?.supply, 1);

    // An honest transfer, and a burn, lower nothing but what they say.
    let tx = env.build(
        std::slice::from_ref(&alices),
        &[(&bob, 330)],
        &[&Packet {
            groups: vec![group(Some(asset), &[(0, 1_000)], &[(0, 990)])],
        }],
        &alice,
    )?;
    env.settle(&tx, &alice).await?;
    assert_eq!(env.client.get_asset(&asset.to_string()).await?.supply, 995);
    Ok(())
}
