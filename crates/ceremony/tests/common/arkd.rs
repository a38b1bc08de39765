//! arkd, modelled for the ceremony's tests.

use super::*;

/// arkd as the ceremony sees it: checks every signature, spends each input once.
#[derive(Default)]
pub struct Arkd {
    pub spent: BTreeSet<VtxoId>,
    pub pending: BTreeMap<Txid, SubmittedTx>,
    pub finalized: BTreeSet<Txid>,
    pub accepted: BTreeMap<Txid, u32>,
}

impl Arkd {
    pub fn submit(&mut self, server: &Keypair, ark_tx: &Psbt, checkpoints: &[Psbt]) -> Input {
        let txid = ark_tx.unsigned_tx.compute_txid();
        let inputs: Vec<VtxoId> = checkpoints
            .iter()
            .map(|c| VtxoId::from(c.unsigned_tx.input[0].previous_output))
            .collect();
        if inputs.iter().any(|i| self.spent.contains(i)) {
            return Input::SubmitRefused(Rejection::new(
                ErrorCode::InputAlreadySpent,
                "VTXO_ALREADY_SPENT",
            ));
        }
        for (n, c) in checkpoints.iter().enumerate() {
            assert!(
                c.inputs.iter().all(|i| i.tap_script_sigs.is_empty()),
                "arkd got checkpoint {n} signed (it expects them unsigned)"
            );
        }
        let server_key = server.x_only_public_key().0;
        for k in 0..ark_tx.inputs.len() {
            let missing = missing_signers(ark_tx, k).unwrap();
            assert_eq!(
                missing,
                vec![server_key],
                "arkd got an ark tx input {k} not signed by its owner"
            );
        }
        let mut final_tx = ark_tx.clone();
        sign_psbt(&mut final_tx, server).unwrap();
        let mut signed: Vec<Psbt> = checkpoints.to_vec();
        for c in &mut signed {
            sign_psbt(c, server).unwrap();
        }
        signed.reverse(); // arkd answers in no particular order
        self.spent.extend(inputs);
        *self.accepted.entry(txid).or_default() += 1;
        let sub = SubmittedTx {
            ark_txid: txid,
            final_ark_tx: final_tx,
            signed_checkpoint_txs: signed,
        };
        self.pending.insert(txid, sub.clone());
        Input::Submitted(sub)
    }

    pub fn find(&self, txid: &Txid) -> Input {
        match self.pending.get(txid) {
            Some(s) if !self.finalized.contains(txid) => Input::Submitted(s.clone()),
            _ => Input::NotPending,
        }
    }

    pub fn finalize(&mut self, txid: &Txid, checkpoints: &[Psbt]) -> Input {
        if self.finalized.contains(txid) {
            return Input::Finalized;
        }
        assert!(
            self.pending.contains_key(txid),
            "FinalizeTx of a tx never submitted"
        );
        for c in checkpoints {
            assert!(
                is_fully_signed(c).unwrap(),
                "FinalizeTx with an unsigned checkpoint"
            );
        }
        self.finalized.insert(*txid);
        Input::Finalized
    }
}
