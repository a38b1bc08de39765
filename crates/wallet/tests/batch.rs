//! The wallet's checks on a batch transaction (issue 7): Alice's swap intent
//! (1 000 gBTC to the DEX for 650 gUSD) inside a two-party ark tx that also
//! carries the DEX's legs. The honest transaction is signed; every lie about
//! Alice's own legs is refused, whatever else the transaction does.

use ark_relay_ark::VtxoInput;
use ark_relay_core::{AssetId, PubKey, Sats, VtxoId};
use ark_relay_protocol::content::{AssetRef, IntentContent, IntentType};
use ark_relay_wallet::testing::{pk, PlannedOutput, Scenario};
use ark_relay_wallet::{Answer, AssetBook, AuthorisedIntent, SignPolicy, Signer};

const GUSD: [u8; 32] = [0x55; 32];

struct Swap {
    s: Scenario,
    gusd: AssetId,
    dex: PubKey,
    outputs: Vec<PlannedOutput>,
    inputs: Vec<VtxoInput>,
}

fn out(owner: PubKey, sats: u64, colour: Option<(AssetId, u64)>) -> PlannedOutput {
    PlannedOutput {
        owner,
        sats,
        colour,
        hint_owner: owner,
    }
}

fn swap() -> Swap {
    let s = Scenario::new();
    let gusd = AssetId::from_bytes(GUSD);
    let (alice, dex, relay) = (s.alice_pk(), pk(&s.bob), s.relay_pk());
    let dex_vtxo: VtxoId = format!("{}:0", "33".repeat(32)).parse().expect("id");
    let dex_input = VtxoInput::collaborative(
        dex_vtxo,
        Sats::new(1_000),
        s.server.default_vtxo(&dex),
        &dex,
        s.server.signer(),
    )
    .expect("dex input");
    let g = s.gbtc;
    // Alice's VTXO: 1 000 sats, 5 000 gBTC; the DEX's: 1 000 sats, 10 000 gUSD
    // (its gBTC fee is left out: Alice cannot see where the DEX's colour comes from).
    let outputs = vec![
        out(dex, 330, Some((g, 1_000))),    // Alice pays the DEX
        out(relay, 330, Some((g, 10))),     // Alice's fee
        out(alice, 340, Some((g, 3_990))),  // Alice's change
        out(alice, 330, Some((gusd, 650))), // the DEX pays Alice
        out(dex, 670, Some((gusd, 9_350))), // the DEX's change
        out(relay, 2_000, None),            // the relay's carrier change
    ];
    let inputs = vec![s.alice_input(), dex_input, s.relay_vtxo.clone()];
    let mut s = s;
    s.known.insert(dex_vtxo, (gusd, 10_000));
    Swap {
        s,
        gusd,
        dex,
        outputs,
        inputs,
    }
}

impl Swap {
    fn signer(&self) -> Signer {
        let s = &self.s;
        let content = IntentContent::batch_leg(
            IntentType::AtomicSwap,
            "swap-1",
            &[(self.dex, AssetRef::gbtc(), 1_000)],
            &[(self.dex, AssetRef::Id(self.gusd), 650)],
            &s.relay_pk(),
            10,
            4_000_000_000,
        );
        let book = AssetBook::from_vtxos(std::slice::from_ref(&s.alice_vtxo));
        let intent =
            AuthorisedIntent::from_batch_intent(s.intent_id, &content, &s.alice_pk(), &book)
                .expect("authorised");
        let mut signer = Signer::new(s.alice, s.relay_pk(), s.server.clone(), SignPolicy::Honest);
        signer.authorise(intent, vec![s.alice_vtxo.clone()]);
        signer
    }

    fn answer(&self, outputs: &[PlannedOutput]) -> Answer {
        let tx = self.s.build(&self.inputs, outputs);
        let ch = self.s.step1_for(&tx, outputs, &self.s.alice_pk());
        self.signer().answer(&ch, 0)
    }
}

#[test]
fn the_honest_batch_transaction_is_signed() {
    let w = swap();
    let a = w.answer(&w.outputs);
    assert!(matches!(a, Answer::Signed(_)), "{:?}", a.refusal());
    let Answer::Signed(r) = a else { return };
    assert_eq!(r.signatures.len(), 1, "only Alice's own input");
    assert_eq!(r.signatures[0].input_index, 0);
}

#[test]
fn a_tampered_batch_transaction_is_refused() {
    let w = swap();
    type Lie = fn(&Swap, &mut Vec<PlannedOutput>);
    let lies: [(&str, Lie, &str); 5] = [
        (
            "the DEX pays one unit less",
            |w, o| o[3].colour = Some((w.gusd, 649)),
            "should own 650",
        ),
        (
            "the DEX's payment goes to a stranger",
            |w, o| {
                let stranger = pk(&w.s.stranger);
                o[3].owner = stranger;
                o[3].hint_owner = stranger;
            },
            "should own 650",
        ),
        (
            "Alice's payment is one unit more",
            |w, o| {
                o[0].colour = Some((w.s.gbtc, 1_001));
                o[2].colour = Some((w.s.gbtc, 3_989));
            },
            "no output pays 1000",
        ),
        (
            "Alice's change shrinks in favour of the DEX",
            |w, o| {
                o[2].colour = Some((w.s.gbtc, 3_980));
                o[4].colour = Some((w.gusd, 9_350));
                o[1].colour = Some((w.s.gbtc, 20));
            },
            "should own 3990",
        ),
        (
            "a hint names Alice on the DEX's change",
            |_, o| o[4].hint_owner = o[2].owner,
            "is not a VTXO of",
        ),
    ];
    for (what, lie, reason) in lies {
        let mut outputs = w.outputs.clone();
        lie(&w, &mut outputs);
        let a = w.answer(&outputs);
        let refusal = a
            .refusal()
            .unwrap_or_else(|| panic!("{what}: signed a tampered batch"));
        assert!(refusal.mentions(reason), "{what}: {refusal}");
    }
}
