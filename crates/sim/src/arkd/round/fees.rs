//! arkd's intent fees (research/ark-batches.md §11): four CEL programs
//! (`pkg/ark-lib/arkfee`) published in `GetInfo.fees.intent_fee`, summed over
//! an intent's offchain inputs (VTXOs: `amount`, `expiry`, `birth`,
//! `inputType`; `weight` never set, so 0), onchain inputs (boarding:
//! `amount`), offchain and onchain outputs (`amount`, `script`), rounded up
//! (`feemanager/arkfee.go ComputeIntentFees`). `RegisterIntent` refuses a
//! proof that leaves less than that (`INTENT_INSUFFICIENT_FEE`);
//! `EstimateIntentFee` answers it. The programs are evaluated by `ark-fees`,
//! the Rust port of arkd's `arkfee` that ark-client uses.

use ark_fees::{Config, Estimator, OffchainInput, OnchainInput, Output, VtxoType};
use bitcoin::TxOut;

use crate::arkd::state::{code, SimError};

/// The fee programs (empty = 0). Each is a CEL expression returning sats as
/// a `double`, e.g. `"200.0"` or `"amount * 0.001"`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeePrograms {
    /// Per offchain input (a VTXO, recoverable or not).
    pub offchain_input: String,
    /// Per onchain input (a boarding output).
    pub onchain_input: String,
    /// Per offchain output (a new VTXO).
    pub offchain_output: String,
    /// Per onchain output (a collaborative exit).
    pub onchain_output: String,
}

fn flat_program(sats: u64) -> String {
    if sats == 0 {
        String::new()
    } else {
        format!("{sats}.0")
    }
}

impl FeePrograms {
    /// Flat fees in sats per offchain input, onchain input, offchain output
    /// and onchain output (0 = no program).
    pub fn flat(
        offchain_input: u64,
        onchain_input: u64,
        offchain_output: u64,
        onchain_output: u64,
    ) -> Self {
        Self {
            offchain_input: flat_program(offchain_input),
            onchain_input: flat_program(onchain_input),
            offchain_output: flat_program(offchain_output),
            onchain_output: flat_program(onchain_output),
        }
    }

    /// Whether every program is empty (every intent costs 0).
    pub fn is_free(&self) -> bool {
        self == &Self::default()
    }

    /// The compiled programs (a configuration error when one does not parse).
    pub fn estimator(&self) -> Result<Estimator, String> {
        Estimator::new(Config {
            intent_offchain_input_program: self.offchain_input.clone(),
            intent_onchain_input_program: self.onchain_input.clone(),
            intent_offchain_output_program: self.offchain_output.clone(),
            intent_onchain_output_program: self.onchain_output.clone(),
        })
        .map_err(|e| e.to_string())
    }
}

/// One input of an intent as the fee programs see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeeInput {
    /// A VTXO (`recoverable` once swept or expired) with its times (unix s).
    Offchain {
        /// Sats.
        amount: u64,
        /// `created_at` (arkd `birth`).
        birth: i64,
        /// `expires_at` (arkd `expiry`).
        expiry: i64,
        /// Swept or expired.
        recoverable: bool,
    },
    /// A boarding output.
    Onchain {
        /// Sats.
        amount: u64,
    },
}

/// The least fee arkd asks of an intent with `inputs`, `offchain` and
/// `onchain` outputs (sats, rounded up).
pub fn intent_fee(
    programs: &FeePrograms,
    inputs: &[FeeInput],
    offchain: &[TxOut],
    onchain: &[TxOut],
) -> Result<u64, SimError> {
    if programs.is_free() {
        return Ok(0);
    }
    let fail = |e: String| SimError::new(code::INTERNAL, "INTERNAL_ERROR", e);
    let estimator = programs.estimator().map_err(fail)?;
    let mut off_in = Vec::new();
    let mut on_in = Vec::new();
    for i in inputs {
        match *i {
            FeeInput::Offchain {
                amount,
                birth,
                expiry,
                recoverable,
            } => off_in.push(OffchainInput {
                amount,
                expiry: Some(expiry),
                birth: Some(birth),
                input_type: if recoverable {
                    VtxoType::Recoverable
                } else {
                    VtxoType::Vtxo
                },
                weight: 0.0,
            }),
            FeeInput::Onchain { amount } => on_in.push(OnchainInput { amount }),
        }
    }
    let outputs = |outs: &[TxOut]| -> Vec<Output> {
        outs.iter()
            .map(|o| Output {
                amount: o.value.to_sat(),
                script: o.script_pubkey.to_hex_string(),
            })
            .collect()
    };
    let fee = estimator
        .eval(&off_in, &on_in, &outputs(offchain), &outputs(onchain))
        .map_err(|e| fail(e.to_string()))?;
    Ok(fee.to_satoshis())
}

/// arkd's refusal of a proof whose fee (Σ inputs − Σ outputs) is below
/// `required`.
pub fn check_fee(paid: u64, required: u64) -> Result<(), SimError> {
    if paid < required {
        return Err(SimError::new(
            code::INVALID_ARGUMENT,
            "INTENT_INSUFFICIENT_FEE",
            format!("intent fee {paid} sats is below the required {required} sats"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::{Amount, ScriptBuf};

    fn out(sats: u64) -> TxOut {
        TxOut {
            value: Amount::from_sat(sats),
            script_pubkey: ScriptBuf::new_op_return([1u8]),
        }
    }

    #[test]
    fn flat_fees_sum_per_input_and_output() {
        let p = FeePrograms::flat(200, 300, 50, 1_000);
        let inputs = [
            FeeInput::Offchain {
                amount: 10_000,
                birth: 1,
                expiry: 2,
                recoverable: false,
            },
            FeeInput::Onchain { amount: 5_000 },
        ];
        let fee = intent_fee(&p, &inputs, &[out(1), out(2)], &[out(3)]).unwrap();
        assert_eq!(fee, 200 + 300 + 2 * 50 + 1_000);
        assert_eq!(
            intent_fee(&FeePrograms::default(), &inputs, &[out(1)], &[]),
            Ok(0)
        );
    }

    #[test]
    fn programs_see_amount_and_input_type_and_round_up() {
        let p = FeePrograms {
            offchain_input: "inputType == 'recoverable' ? 0.0 : amount * 0.0015".into(),
            ..FeePrograms::default()
        };
        let input = |recoverable| FeeInput::Offchain {
            amount: 1_000,
            birth: 0,
            expiry: 0,
            recoverable,
        };
        assert_eq!(intent_fee(&p, &[input(false)], &[], &[]), Ok(2), "1.5 → 2");
        assert_eq!(intent_fee(&p, &[input(true)], &[], &[]), Ok(0));
    }

    #[test]
    fn a_short_fee_is_refused_with_arkds_name() {
        assert!(check_fee(250, 250).is_ok());
        let e = check_fee(249, 250).err().map(|e| e.name);
        assert_eq!(e.as_deref(), Some("INTENT_INSUFFICIENT_FEE"));
        assert!(FeePrograms {
            offchain_input: "amount +".into(),
            ..FeePrograms::default()
        }
        .estimator()
        .is_err());
    }
}
