//! arkd's intent fees as the relay pays them (research/ark-batches.md §11):
//! the programs arkd publishes in `GetInfo.fees` ([`IntentFeePrograms`],
//! CEL) evaluated with `ark-fees` (the Rust port of arkd's `arkfee`, as
//! ark-client uses it), summed over an intent's inputs and outputs and
//! rounded up, as arkd's `ComputeIntentFees` charges them at
//! `RegisterIntent`. The relay's intents leave exactly that to arkd: its own
//! jobs take it from their outputs (a renewal) or add it to the boarding
//! payment, and a delegated renewal's fee (the published renewal fee) must
//! cover it.

use ark_fees::{Config, Estimator, OffchainInput, OnchainInput, Output, VtxoType};
use ark_relay_core::backends::rounds::IntentFeePrograms;
use ark_relay_core::Sats;
use bitcoin::ScriptBuf;

/// One input of an intent as arkd's fee programs see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeeInput {
    /// A VTXO: sats, `created_at` and `expires_at` (unix s), swept or not.
    Vtxo {
        /// Sats.
        sats: Sats,
        /// arkd's `birth`.
        created_at: i64,
        /// arkd's `expiry`.
        expires_at: i64,
        /// Swept or expired (`inputType` `recoverable`).
        recoverable: bool,
    },
    /// A boarding output.
    Boarding {
        /// Sats.
        sats: Sats,
    },
}

/// Why a fee could not be computed (a program arkd publishes that does not
/// compile or evaluate here).
#[derive(Debug, thiserror::Error)]
#[error("intent fee programs: {0}")]
pub struct FeeError(String);

/// The fee arkd charges an intent with `inputs` and new VTXOs `outputs`
/// (amount, script); no onchain outputs (the relay never exits in a round).
pub fn intent_fee(
    programs: &IntentFeePrograms,
    inputs: &[FeeInput],
    outputs: &[(Sats, &ScriptBuf)],
) -> Result<Sats, FeeError> {
    if programs == &IntentFeePrograms::default() {
        return Ok(Sats::ZERO);
    }
    let estimator = Estimator::new(Config {
        intent_offchain_input_program: programs.offchain_input.clone(),
        intent_onchain_input_program: programs.onchain_input.clone(),
        intent_offchain_output_program: programs.offchain_output.clone(),
        intent_onchain_output_program: programs.onchain_output.clone(),
    })
    .map_err(|e| FeeError(e.to_string()))?;
    let mut offchain = Vec::new();
    let mut onchain = Vec::new();
    for i in inputs {
        match *i {
            FeeInput::Vtxo {
                sats,
                created_at,
                expires_at,
                recoverable,
            } => offchain.push(OffchainInput {
                amount: sats.get(),
                expiry: Some(expires_at),
                birth: Some(created_at),
                input_type: if recoverable {
                    VtxoType::Recoverable
                } else {
                    VtxoType::Vtxo
                },
                // arkd never sets it (research §11).
                weight: 0.0,
            }),
            FeeInput::Boarding { sats } => onchain.push(OnchainInput { amount: sats.get() }),
        }
    }
    let outs: Vec<Output> = outputs
        .iter()
        .map(|(sats, script)| Output {
            amount: sats.get(),
            script: script.to_hex_string(),
        })
        .collect();
    let fee = estimator
        .eval(&offchain, &onchain, &outs, &[])
        .map_err(|e| FeeError(e.to_string()))?;
    Ok(Sats::new(fee.to_satoshis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(input: &str, boarding: &str, output: &str) -> IntentFeePrograms {
        IntentFeePrograms {
            offchain_input: input.into(),
            onchain_input: boarding.into(),
            offchain_output: output.into(),
            onchain_output: String::new(),
        }
    }

    #[test]
    fn sums_inputs_and_outputs_and_rounds_up() {
        let script = ScriptBuf::new();
        let vtxo = FeeInput::Vtxo {
            sats: Sats::new(10_000),
            created_at: 0,
            expires_at: 100,
            recoverable: false,
        };
        let p = flat("200.0", "300.0", "amount * 0.0001");
        let fee = intent_fee(
            &p,
            &[vtxo, FeeInput::Boarding { sats: Sats::new(1) }],
            &[(Sats::new(10_000), &script), (Sats::new(5), &script)],
        )
        .expect("fee");
        // 200 + 300 + 1.0 + 0.0005 → 501.0005 → 502.
        assert_eq!(fee, Sats::new(502));
        let free = intent_fee(&IntentFeePrograms::default(), &[vtxo], &[]).expect("fee");
        assert_eq!(free, Sats::ZERO);
        assert!(intent_fee(&flat("amount +", "", ""), &[vtxo], &[]).is_err());
    }
}
