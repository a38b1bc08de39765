//! arkd's intent proofs (`pkg/ark-lib/intent`, `service.go RegisterIntent`),
//! checked without I/O: the BIP-322-style proof PSBT (input 0 spends the
//! `toSpend` tx committing to the message), the JSON message, and every real
//! input against what the simulator knows of it (a VTXO of its store or a
//! boarding UTXO on the chain), with the owner's signatures.

use bitcoin::hashes::{sha256, Hash};
use bitcoin::opcodes::all::OP_PUSHBYTES_0;
use bitcoin::secp256k1::PublicKey;
use bitcoin::transaction::Version;
use bitcoin::{
    absolute, Amount, OutPoint, Psbt, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness,
};

use ark_relay_ark::{input_leaf, missing_signers, verify_signatures, Closure, ServerInfo};

use crate::arkd::state::{code, SimError};

/// What an intent message asks (arkd `intent.BaseMessage` + type fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `register`, `delete`, `estimate-intent-fee`, `get-pending-tx`.
    pub kind: String,
    /// Outputs that leave on chain.
    pub onchain_output_indexes: Vec<usize>,
    /// Not valid before (unix s, 0 = no bound).
    pub valid_at: i64,
    /// Not valid after (unix s, 0 = no bound).
    pub expire_at: i64,
    /// MuSig2 keys co-signing the intent's VTXO-tree leaf.
    pub cosigners: Vec<PublicKey>,
}

fn invalid(name: &str, msg: impl Into<String>) -> SimError {
    SimError::new(code::INVALID_ARGUMENT, name, msg)
}

/// Parses the JSON message arkd's clients send.
pub fn parse_message(message: &str) -> Result<Message, SimError> {
    let bad = |m: &str| invalid("INVALID_INTENT_MESSAGE", m.to_owned());
    let v: serde_json::Value =
        serde_json::from_str(message).map_err(|e| bad(&format!("invalid json: {e}")))?;
    let kind = v
        .get("type")
        .and_then(|t| t.as_str())
        .ok_or_else(|| bad("missing type"))?
        .to_owned();
    let int = |name: &str| v.get(name).and_then(serde_json::Value::as_i64).unwrap_or(0);
    let onchain_output_indexes = match v.get("onchain_output_indexes") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|i| {
                i.as_u64()
                    .and_then(|i| usize::try_from(i).ok())
                    .ok_or_else(|| bad("invalid onchain output index"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad("onchain_output_indexes must be a list")),
    };
    let cosigners = match v.get("cosigners_public_keys") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|k| {
                k.as_str()
                    .and_then(|k| k.parse::<PublicKey>().ok())
                    .ok_or_else(|| bad("invalid cosigner public key"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad("cosigners_public_keys must be a list")),
    };
    Ok(Message {
        kind,
        onchain_output_indexes,
        valid_at: int("valid_at"),
        expire_at: int("expire_at"),
        cosigners,
    })
}

/// arkd's time-range check (`INVALID_INTENT_TIMERANGE`) on the simulator's
/// two clocks (`host_now <= chain_now`; they differ after time travel): not
/// yet valid when `valid_at` is past the chain clock (plus `skew`, how far a
/// client's clock may run ahead), expired when `expire_at` is before the
/// host clock. An intent is in range if it is at some instant between them.
pub fn check_time_range(
    m: &Message,
    host_now: i64,
    chain_now: i64,
    skew: i64,
) -> Result<(), SimError> {
    let latest = chain_now.max(host_now);
    let earliest = chain_now.min(host_now);
    if m.valid_at > 0 && latest.saturating_add(skew) < m.valid_at {
        return Err(invalid(
            "INVALID_INTENT_TIMERANGE",
            format!(
                "proof of ownership not yet valid (valid_at {} > now {latest})",
                m.valid_at
            ),
        ));
    }
    if m.expire_at > 0 && earliest > m.expire_at {
        return Err(invalid(
            "INVALID_INTENT_TIMERANGE",
            format!(
                "proof of ownership expired (expire_at {} < now {earliest})",
                m.expire_at
            ),
        ));
    }
    Ok(())
}

/// The `toSpend` txid the proof's input 0 must spend for `message` signed
/// over `script` (BIP-322 with arkd's tag `ark-intent-proof-message`).
pub fn to_spend_txid(message: &str, script: &ScriptBuf) -> Txid {
    let tag = sha256::Hash::hash(b"ark-intent-proof-message");
    let mut data = Vec::with_capacity(64 + message.len());
    data.extend_from_slice(tag.as_byte_array());
    data.extend_from_slice(tag.as_byte_array());
    data.extend_from_slice(message.as_bytes());
    let hash = sha256::Hash::hash(&data);
    let script_sig = ScriptBuf::builder()
        .push_opcode(OP_PUSHBYTES_0)
        .push_slice(hash.as_byte_array())
        .into_script();
    Transaction {
        version: Version::non_standard(0),
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint {
                txid: Txid::all_zeros(),
                vout: 0xFFFF_FFFF,
            },
            script_sig,
            sequence: Sequence::ZERO,
            witness: Witness::default(),
        }],
        output: vec![TxOut {
            value: Amount::ZERO,
            script_pubkey: script.clone(),
        }],
    }
    .compute_txid()
}

/// What the server knows about one proof input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known {
    /// A spendable VTXO that needs a forfeit (not swept, not expired).
    Vtxo(TxOut),
    /// A swept or expired VTXO: settled without forfeit (arkd "recoverable").
    Recoverable(TxOut),
    /// A confirmed, unspent on-chain output: a boarding input.
    Boarding(TxOut),
}

/// A checked proof input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenInput {
    /// The outpoint.
    pub outpoint: OutPoint,
    /// Value and script (the server's copy).
    pub prevout: TxOut,
    /// Its kind.
    pub known: Known,
    /// The leaf the proof spends it with (the forfeit leaf).
    pub leaf: ScriptBuf,
}

/// A checked proof: its inputs and outputs.
#[derive(Debug, Clone)]
pub struct Proven {
    /// Real inputs (proof inputs 1..), in order.
    pub inputs: Vec<ProvenInput>,
    /// Outputs that become VTXOs (P2TR), in proof order.
    pub offchain: Vec<TxOut>,
    /// Outputs that leave on chain.
    pub onchain: Vec<TxOut>,
    /// Σ inputs − Σ outputs.
    pub fee: u64,
}

/// arkd's `validateVtxoScriptForSigners` for inputs that need it (boarding
/// outputs and VTXOs that need a forfeit): the PSBT's taptree field must
/// rebuild the prevout's script, and a boarding script's exit leaves must not
/// open before `boarding_exit_delay` (the simulator's unilateral exit delay).
fn check_taptree(
    server: &ServerInfo,
    input: &bitcoin::psbt::Input,
    known: &Known,
    index: usize,
) -> Result<(), SimError> {
    let (prevout, boarding) = match known {
        Known::Boarding(o) => (o, true),
        Known::Vtxo(o) => (o, false),
        Known::Recoverable(_) => return Ok(()),
    };
    let bad = |m: String| invalid("INVALID_VTXO_SCRIPT", format!("input {index}: {m}"));
    let leaves = ark_relay_ark::taptree::get_taptree(input)
        .map_err(|e| bad(e.to_string()))?
        .ok_or_else(|| bad("missing taptree field".into()))?;
    let script = ark_relay_ark::VtxoScript::new(leaves).map_err(|e| bad(e.to_string()))?;
    if script.script_pubkey() != prevout.script_pubkey {
        return Err(bad("taptree does not rebuild the prevout script".into()));
    }
    if boarding {
        let min = server.unilateral_exit_delay().arkd_seconds();
        match script.smallest_exit_delay() {
            Some(d) if d.arkd_seconds() >= min => {}
            _ => return Err(bad(format!("boarding exit delay below {min}"))),
        }
    }
    Ok(())
}

/// Checks an intent proof the way arkd's `intent.Verify` and `RegisterIntent`
/// do (`register` = a registration, whose proof must create outputs).
/// `lookup` answers what an outpoint is (or the error to refuse it with).
pub fn verify_proof(
    server: &ServerInfo,
    proof: &Psbt,
    message_raw: &str,
    message: &Message,
    dust: u64,
    register: bool,
    mut lookup: impl FnMut(&OutPoint) -> Result<Known, SimError>,
) -> Result<Proven, SimError> {
    let bad_proof = |m: String| invalid("INVALID_INTENT_PROOF", m);
    let tx = &proof.unsigned_tx;
    if tx.input.len() < 2 || proof.inputs.len() != tx.input.len() {
        return Err(invalid(
            "INVALID_INTENT_PSBT",
            "proof needs the toSpend input and at least one input",
        ));
    }
    if register
        && (tx.output.is_empty() || tx.output.iter().all(|o| o.script_pubkey.is_op_return()))
    {
        return Err(invalid(
            "INVALID_INTENT_PSBT",
            "proof does not contain outputs",
        ));
    }
    // Real inputs: known, owned, unique.
    let mut checked = proof.clone();
    let mut inputs: Vec<ProvenInput> = Vec::new();
    for index in 1..tx.input.len() {
        let outpoint = tx.input[index].previous_output;
        if inputs.iter().any(|i| i.outpoint == outpoint) {
            return Err(invalid(
                "INVALID_INTENT_PSBT",
                format!("duplicated input {outpoint}"),
            ));
        }
        let known = lookup(&outpoint)?;
        let prevout = match &known {
            Known::Vtxo(o) | Known::Recoverable(o) | Known::Boarding(o) => o.clone(),
        };
        let declared = proof.inputs[index].witness_utxo.as_ref();
        if declared != Some(&prevout) {
            return Err(invalid(
                "INVALID_PSBT_INPUT",
                format!("input {index} ({outpoint}): witness utxo does not match the prevout"),
            ));
        }
        checked.inputs[index].witness_utxo = Some(prevout.clone());
        let (leaf, _) =
            input_leaf(&checked, index).map_err(|e| bad_proof(format!("input {index}: {e}")))?;
        // The spent leaf must be a collaborative one with the server's key.
        let collaborative = matches!(Closure::decode(&leaf), Some(c) if !c.is_exit() && c.keys().iter().any(|k| server.is_signer(k)));
        if !collaborative {
            return Err(invalid(
                "INVALID_VTXO_SCRIPT",
                format!("input {index}: the proof must spend a leaf the server co-signs"),
            ));
        }
        check_taptree(server, &proof.inputs[index], &known, index)?;
        inputs.push(ProvenInput {
            outpoint,
            prevout,
            known,
            leaf,
        });
    }
    // Input 0 spends toSpend(message) over input 1's script.
    let first_script = inputs[0].prevout.script_pubkey.clone();
    let expected = to_spend_txid(message_raw, &first_script);
    if tx.input[0].previous_output
        != (OutPoint {
            txid: expected,
            vout: 0,
        })
    {
        return Err(bad_proof(
            "input 0 does not spend the toSpend tx of this message".into(),
        ));
    }
    checked.inputs[0].witness_utxo = Some(TxOut {
        value: Amount::ZERO,
        script_pubkey: first_script,
    });
    verify_signatures(&checked).map_err(|e| bad_proof(format!("invalid signature: {e}")))?;
    for index in 0..checked.inputs.len() {
        let missing: Vec<_> = missing_signers(&checked, index)
            .map_err(|e| bad_proof(e.to_string()))?
            .into_iter()
            .filter(|k| !server.is_signer(k))
            .collect();
        if !missing.is_empty() {
            return Err(bad_proof(format!("input {index}: missing signature")));
        }
    }
    // Outputs.
    let mut offchain = Vec::new();
    let mut onchain = Vec::new();
    for (i, out) in tx.output.iter().enumerate() {
        if message.onchain_output_indexes.contains(&i) {
            onchain.push(out.clone());
        } else if out.script_pubkey.is_p2tr() {
            if out.value.to_sat() < dust {
                return Err(invalid(
                    "AMOUNT_TOO_LOW",
                    format!(
                        "output {i}: {} sats is below dust {dust}",
                        out.value.to_sat()
                    ),
                ));
            }
            offchain.push(out.clone());
        } else if out.value.to_sat() > 0 || !out.script_pubkey.is_op_return() {
            return Err(invalid(
                "INVALID_PKSCRIPT",
                format!("output {i}: offchain outputs must be P2TR"),
            ));
        }
    }
    let total_in = inputs
        .iter()
        .try_fold(0u64, |a, i| a.checked_add(i.prevout.value.to_sat()));
    let total_out = tx
        .output
        .iter()
        .try_fold(0u64, |a, o| a.checked_add(o.value.to_sat()));
    let (Some(total_in), Some(total_out)) = (total_in, total_out) else {
        return Err(invalid("INVALID_INTENT_PSBT", "amount overflow"));
    };
    let fee = total_in.checked_sub(total_out).ok_or_else(|| {
        invalid(
            "INTENT_INSUFFICIENT_FEE",
            format!("outputs ({total_out}) exceed inputs ({total_in})"),
        )
    })?;
    Ok(Proven {
        inputs,
        offchain,
        onchain,
        fee,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_parse_in_arkds_field_order_and_refuse_garbage() {
        let secp = bitcoin::secp256k1::Secp256k1::new();
        let sk = bitcoin::secp256k1::SecretKey::from_slice(&[1; 32]).expect("key");
        let key = PublicKey::from_secret_key(&secp, &sk).to_string();
        let raw = format!(
            r#"{{"type":"register","onchain_output_indexes":[1],"valid_at":10,"expire_at":20,"cosigners_public_keys":["{key}"]}}"#
        );
        let m = parse_message(&raw).expect("parses");
        assert_eq!(m.kind, "register");
        assert_eq!(m.onchain_output_indexes, vec![1]);
        assert_eq!((m.valid_at, m.expire_at), (10, 20));
        assert_eq!(m.cosigners.len(), 1);
        for bad in [
            "not json",
            r#"{"valid_at":1}"#,
            r#"{"type":"register","cosigners_public_keys":["zz"]}"#,
        ] {
            assert_eq!(
                parse_message(bad).map_err(|e| e.name),
                Err("INVALID_INTENT_MESSAGE".to_owned()),
                "{bad}"
            );
        }
    }

    #[test]
    fn time_ranges_allow_the_skew_and_nothing_more() {
        let m = Message {
            kind: "register".into(),
            onchain_output_indexes: Vec::new(),
            valid_at: 105,
            expire_at: 200,
            cosigners: Vec::new(),
        };
        assert!(check_time_range(&m, 100, 100, 5).is_ok());
        assert!(check_time_range(&m, 99, 99, 5).is_err(), "not yet valid");
        assert!(check_time_range(&m, 200, 200, 5).is_ok());
        let late = check_time_range(&m, 201, 201, 5).err().map(|e| e.name);
        assert_eq!(late.as_deref(), Some("INVALID_INTENT_TIMERANGE"));
    }

    #[test]
    fn valid_at_follows_the_chain_clock_and_expiry_the_host_clock() {
        let m = Message {
            kind: "register".into(),
            onchain_output_indexes: Vec::new(),
            valid_at: 10_000,
            expire_at: 0,
            cosigners: Vec::new(),
        };
        // Host clock at 100: only time travel on the chain makes it valid.
        assert!(check_time_range(&m, 100, 100, 5).is_err());
        assert!(check_time_range(&m, 100, 9_999, 5).is_ok());
        // A host-stamped message (expires at host + 120) stays good after
        // the chain clock travelled past it.
        let host_stamped = Message {
            valid_at: 100,
            expire_at: 220,
            ..m
        };
        assert!(check_time_range(&host_stamped, 110, 50_000, 5).is_ok());
        assert!(check_time_range(&host_stamped, 221, 50_000, 5).is_err());
    }

    #[test]
    fn to_spend_commits_to_message_and_script() {
        let a = ScriptBuf::new_op_return([1u8]);
        let b = ScriptBuf::new_op_return([2u8]);
        assert_ne!(to_spend_txid("m", &a), to_spend_txid("n", &a));
        assert_ne!(to_spend_txid("m", &a), to_spend_txid("m", &b));
        assert_eq!(to_spend_txid("m", &a), to_spend_txid("m", &a));
    }
}
