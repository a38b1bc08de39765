//! Building real challenges for tests (here and in other crates' tests): a
//! test Ark server, a sender with one coloured VTXO, and the honest
//! `sign_ark_tx` / `sign_checkpoint_txs` challenges a relay would send for a
//! transfer, which tests then tamper with.

use ark_relay_ark::sign::{sign_input, sign_requests};
use std::collections::BTreeMap;

use ark_relay_ark::{
    build_offchain_tx, packet_for_colours, OffchainTx, Output, RelativeLocktime, ServerInfo,
    VtxoInput,
};
use ark_relay_core::{AssetAmount, AssetId, Colour, EventId, PubKey, Sats, SessionId, VtxoId};
use ark_relay_protocol::content::{
    AssetRef, ChallengeType, ColourHint, IntentContent, PayloadToSign, SigningChallenge, VERSION,
};
use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};

use crate::verify::{encode_psbt, wire_sign_requests, AssetBook, AuthorisedIntent, OwnedVtxo};

/// The gBTC asset id used by tests.
pub const GBTC_ID: [u8; 32] = [0x47; 32];

/// A keypair from a one-byte seed (`[b; 32]`).
pub fn keypair(b: u8) -> Keypair {
    let secp = Secp256k1::new();
    let sk =
        SecretKey::from_slice(&[b; 32]).expect("[b; 32] is a valid secret key for b in 1..=0xfe");
    Keypair::from_secret_key(&secp, &sk)
}

/// The x-only key of a keypair.
pub fn pk(k: &Keypair) -> PubKey {
    PubKey::from_x_only(k.x_only_public_key().0)
}

/// One coloured output of the ark tx the scenario builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedOutput {
    /// The VTXO's owner (the script is their default VTXO).
    pub owner: PubKey,
    /// Carrier sats.
    pub sats: u64,
    /// Colour: asset id and amount; `None` for an uncoloured output (no hint).
    pub colour: Option<(AssetId, u64)>,
    /// The owner the colour hint names (normally `owner`).
    pub hint_owner: PubKey,
}

/// A transfer from Alice to Bob with the relay's fee, and everything needed to
/// build (and tamper with) its challenges.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The Ark server's signer.
    pub signer: Keypair,
    /// The server parameters.
    pub server: ServerInfo,
    /// The sender (the wallet under test).
    pub alice: Keypair,
    /// The recipient.
    pub bob: Keypair,
    /// The relay.
    pub relay: Keypair,
    /// Someone else.
    pub stranger: Keypair,
    /// gBTC's id.
    pub gbtc: AssetId,
    /// Alice's VTXO (1 000 sats carrying 5 000 gBTC).
    pub alice_vtxo: OwnedVtxo,
    /// The relay's inventory VTXO (2 000 sats, uncoloured) it adds for carriers.
    pub relay_vtxo: VtxoInput,
    /// The intent Alice published.
    pub intent: IntentContent,
    /// Its event id.
    pub intent_id: EventId,
    /// The outputs of the honest ark tx.
    pub outputs: Vec<PlannedOutput>,
    /// Amount sent to Bob.
    pub amount: u64,
    /// The fee.
    pub fee: u64,
    /// The colour of every input VTXO the relay knows (Alice's; tests add others).
    pub known: BTreeMap<VtxoId, (AssetId, u64)>,
}

impl Default for Scenario {
    fn default() -> Self {
        Self::new()
    }
}

impl Scenario {
    /// Alice sends Bob 1 000 gBTC with a 10 gBTC fee.
    pub fn new() -> Self {
        let signer = keypair(1);
        let server = ServerInfo::new(
            signer.x_only_public_key().0,
            signer.x_only_public_key().0,
            RelativeLocktime::blocks(144),
            RelativeLocktime::blocks(10),
            Sats::new(330),
            bitcoin::Network::Regtest,
        );
        let (alice, bob, relay, stranger) = (keypair(2), keypair(3), keypair(4), keypair(5));
        let gbtc = AssetId::from_bytes(GBTC_ID);
        let vtxo = |b: u8| -> VtxoId {
            format!("{}:0", hex::encode([b; 32]))
                .parse()
                .expect("valid VTXO id")
        };
        let alice_pk = pk(&alice);
        let alice_vtxo = OwnedVtxo {
            vtxo: vtxo(0x11),
            sats: 1_000,
            asset_id: Some(gbtc),
            ticker: Some("gBTC".into()),
            amount: 5_000,
            expires_at: None,
            tapscripts: server.default_vtxo(&alice_pk).to_tapscripts(),
            locked: false,
        };
        let relay_pk = pk(&relay);
        let relay_vtxo = VtxoInput::collaborative(
            vtxo(0x22),
            Sats::new(2_000),
            server.default_vtxo(&relay_pk),
            &relay_pk,
            server.signer(),
        )
        .expect("relay input");
        let (amount, fee) = (1_000, 10);
        let intent = IntentContent::transfer(
            "test-action-1",
            &pk(&bob),
            AssetRef::gbtc(),
            amount,
            &relay_pk,
            fee,
            4_000_000_000,
        );
        let intent_id = EventId::from_bytes([0xee; 32]);
        let out = |owner: PubKey, sats, colour| PlannedOutput {
            owner,
            sats,
            colour,
            hint_owner: owner,
        };
        let outputs = vec![
            out(pk(&bob), 330, Some((gbtc, amount))),
            out(relay_pk, 330, Some((gbtc, fee))),
            out(alice_pk, 1_000, Some((gbtc, 5_000 - amount - fee))),
            out(relay_pk, 1_340, None),
        ];
        Self {
            signer,
            server,
            alice,
            bob,
            relay,
            stranger,
            gbtc,
            alice_vtxo,
            relay_vtxo,
            intent,
            intent_id,
            outputs,
            amount,
            fee,
            known: BTreeMap::from([(vtxo(0x11), (gbtc, 5_000))]),
        }
    }

    /// Alice's key.
    pub fn alice_pk(&self) -> PubKey {
        pk(&self.alice)
    }

    /// The relay's key.
    pub fn relay_pk(&self) -> PubKey {
        pk(&self.relay)
    }

    /// The session of the intent.
    pub fn session(&self) -> SessionId {
        SessionId::from(self.intent_id)
    }

    /// The intent as the wallet authorises it.
    pub fn authorised(&self) -> AuthorisedIntent {
        AuthorisedIntent::from_intent(
            self.intent_id,
            &self.intent,
            &self.alice_pk(),
            &AssetBook::from_vtxos(std::slice::from_ref(&self.alice_vtxo)),
        )
        .expect("scenario intent")
    }

    /// Alice's VTXO as an input.
    pub fn alice_input(&self) -> VtxoInput {
        let me = self.alice_pk();
        VtxoInput::collaborative(
            self.alice_vtxo.vtxo,
            Sats::new(self.alice_vtxo.sats),
            self.server.default_vtxo(&me),
            &me,
            self.server.signer(),
        )
        .expect("alice input")
    }

    /// Builds the ark tx and checkpoints for `inputs` and `outputs`, with the
    /// Arkade Asset packet a relay builds: each input's colour (from
    /// [`Scenario::known`]) in, each output's colour out.
    pub fn build(&self, inputs: &[VtxoInput], outputs: &[PlannedOutput]) -> OffchainTx {
        let colours: Vec<_> = outputs.iter().map(|o| o.colour).collect();
        self.build_with_packet(inputs, outputs, &colours)
    }

    /// Like [`Scenario::build`], but the packet gives output `j` the colour
    /// `packet[j]` whatever its hint says (to build a packet that lies).
    pub fn build_with_packet(
        &self,
        inputs: &[VtxoInput],
        outputs: &[PlannedOutput],
        packet: &[Option<(AssetId, u64)>],
    ) -> OffchainTx {
        let mut outs: Vec<Output> = outputs
            .iter()
            .map(|o| Output::Vtxo {
                owner: o.owner,
                sats: Sats::new(o.sats),
            })
            .collect();
        let colour = |c: Option<(AssetId, u64)>| {
            c.map(|(asset, amount)| Colour {
                asset,
                amount: AssetAmount::new(amount),
            })
        };
        let ins: Vec<_> = inputs
            .iter()
            .map(|i| colour(self.known.get(&i.id).copied()))
            .collect();
        let outs_colour: Vec<_> = packet.iter().map(|c| colour(*c)).collect();
        if let Some(p) = packet_for_colours(&ins, &outs_colour).expect("packet") {
            outs.push(Output::Raw(p.to_txout()));
        }
        build_offchain_tx(&self.server, inputs, &outs).expect("build_offchain_tx")
    }

    /// The honest transaction: Alice's VTXO and the relay's inventory VTXO in,
    /// the planned outputs out.
    pub fn honest_tx(&self) -> OffchainTx {
        self.build(
            &[self.alice_input(), self.relay_vtxo.clone()],
            &self.outputs,
        )
    }

    /// The step-1 challenge a relay sends for `tx` with `outputs`' colour hints,
    /// asking `who` for its signatures.
    pub fn step1_for(
        &self,
        tx: &OffchainTx,
        outputs: &[PlannedOutput],
        who: &PubKey,
    ) -> SigningChallenge {
        let requests = sign_requests(std::slice::from_ref(&tx.ark_tx), who).expect("sign_requests");
        let colour = outputs
            .iter()
            .enumerate()
            .filter_map(|(i, o)| {
                o.colour.map(|(asset, amount)| ColourHint {
                    psbt_index: 0,
                    output_index: u32::try_from(i).unwrap_or(u32::MAX),
                    owner: o.hint_owner.to_string(),
                    asset: AssetRef::Id(asset),
                    amount,
                    burned: 0,
                })
            })
            .collect();
        SigningChallenge {
            v: VERSION,
            session_id: self.session(),
            step: 1,
            challenge_type: ChallengeType::SignArkTx,
            payload_to_sign: PayloadToSign {
                psbts: vec![encode_psbt(&tx.ark_tx)],
                sign: wire_sign_requests(&requests).unwrap_or_default(),
                colour,
            },
            human_readable_context: format!(
                "Step 1/2: send {} gBTC to {} (fee {})",
                self.amount,
                pk(&self.bob),
                self.fee
            ),
            expires_at: 4_000_000_000,
        }
    }

    /// The honest step-1 challenge.
    pub fn step1(&self) -> SigningChallenge {
        self.step1_for(&self.honest_tx(), &self.outputs, &self.alice_pk())
    }

    /// The step-2 challenge for `tx`: Alice's checkpoint, signed by the server.
    pub fn step2_for(&self, tx: &OffchainTx) -> SigningChallenge {
        let mut cp = tx.checkpoints[0].clone();
        let _ = sign_input(&mut cp, 0, &self.signer);
        self.step2_with(vec![cp])
    }

    /// A step-2 challenge over the given checkpoint PSBTs, asking Alice.
    pub fn step2_with(&self, checkpoints: Vec<bitcoin::Psbt>) -> SigningChallenge {
        let requests = sign_requests(&checkpoints, &self.alice_pk()).unwrap_or_default();
        SigningChallenge {
            v: VERSION,
            session_id: self.session(),
            step: 2,
            challenge_type: ChallengeType::SignCheckpointTxs,
            payload_to_sign: PayloadToSign {
                psbts: checkpoints.iter().map(encode_psbt).collect(),
                sign: wire_sign_requests(&requests).unwrap_or_default(),
                colour: vec![],
            },
            human_readable_context: "Step 2/2: sign the checkpoint".into(),
            expires_at: 4_000_000_000,
        }
    }
}
