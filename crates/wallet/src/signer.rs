//! The signing oracle (PRD §11.4–11.6): answers 31511 challenges for the
//! wallet's own authorised intents only, after contextual verification.
//!
//! Pure and synchronous so that tests can drive it directly; the networked
//! [`crate::Wallet`] feeds it decrypted challenges and publishes its answers.

use std::collections::HashMap;

use ark_relay_ark::sign::{input_sighash, sign_sighash};
use ark_relay_ark::{ServerInfo, SignRequest};
use ark_relay_core::{PubKey, SessionId};
use ark_relay_protocol::content::{SignatureEntry, SigningChallenge, SigningResponse, VERSION};
use bitcoin::secp256k1::Keypair;
use bitcoin::Psbt;

use crate::verify::{
    decode_psbt, verify_ark_tx_challenge, verify_checkpoint_challenge, AssetBook, AuthorisedIntent,
    Context, IndexerView, OwnedVtxo, Refusal, VerifiedArkTx,
};

/// How the signer answers (tests simulate unresponsive or unwilling wallets).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SignPolicy {
    /// Verify, then sign or refuse.
    #[default]
    Honest,
    /// Never answer any challenge (the relay's session should time out).
    NeverAnswer,
    /// Refuse every challenge without looking at it.
    RejectAll,
}

/// What the signer decided about one challenge.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Verified and signed.
    Signed(SigningResponse),
    /// Refused, with the reasons (the response carries them as `reject`).
    Refused(SigningResponse, Refusal),
    /// Not answered (policy [`SignPolicy::NeverAnswer`]).
    Silent,
}

impl Answer {
    /// The 31512 content to send, if any.
    pub fn response(&self) -> Option<&SigningResponse> {
        match self {
            Answer::Signed(r) | Answer::Refused(r, _) => Some(r),
            Answer::Silent => None,
        }
    }

    /// The refusal, if refused.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Answer::Refused(_, r) => Some(r),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
struct Session {
    intent: AuthorisedIntent,
    vtxos: Vec<OwnedVtxo>,
    assets: AssetBook,
    step1: Option<VerifiedArkTx>,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Signer {
    keypair: Keypair,
    me: PubKey,
    relay: PubKey,
    server: ServerInfo,
    policy: SignPolicy,
    sessions: HashMap<SessionId, Session>,
}

impl Signer {
    /// A signer for `keypair`'s key, talking to `relay` under `server`.
    pub fn new(keypair: Keypair, relay: PubKey, server: ServerInfo, policy: SignPolicy) -> Self {
        Self {
            me: PubKey::from_x_only(keypair.x_only_public_key().0),
            keypair,
            relay,
            server,
            policy,
            sessions: HashMap::new(),
        }
    }

    /// The wallet's key.
    pub fn pubkey(&self) -> &PubKey {
        &self.me
    }

    /// The server parameters in use.
    pub fn server(&self) -> &ServerInfo {
        &self.server
    }

    /// Changes the policy.
    pub fn set_policy(&mut self, policy: SignPolicy) {
        self.policy = policy;
    }

    /// Authorises the session of `intent` (PRD §11.3), to be checked against
    /// `vtxos` (the wallet's VTXOs when it published the intent).
    pub fn authorise(&mut self, intent: AuthorisedIntent, vtxos: Vec<OwnedVtxo>) {
        let assets = AssetBook::from_vtxos(&vtxos);
        self.sessions.insert(
            intent.session_id(),
            Session {
                intent,
                vtxos,
                assets,
                step1: None,
            },
        );
    }

    /// Whether `session` is one of the wallet's authorised sessions.
    pub fn knows(&self, session: &SessionId) -> bool {
        self.sessions.contains_key(session)
    }

    /// Ends a session (completed, failed or given up): later challenges for
    /// it are refused.
    pub fn end(&mut self, session: &SessionId) {
        self.sessions.remove(session);
    }

    /// The ark tx signed in step 1 of `session`, if any.
    pub fn signed_ark_tx(&self, session: &SessionId) -> Option<&Psbt> {
        self.sessions
            .get(session)
            .and_then(|s| s.step1.as_ref())
            .map(|v| &v.ark_tx)
    }

    /// The VTXOs `session` was authorised with (what an indexer check looks up).
    pub fn session_vtxos(&self, session: &SessionId) -> Vec<ark_relay_core::VtxoId> {
        self.sessions
            .get(session)
            .map(|s| s.vtxos.iter().map(|v| v.vtxo).collect())
            .unwrap_or_default()
    }

    /// Decides about one challenge; `now` is unix seconds (expired challenges
    /// are refused). My inputs are checked against my own history only.
    pub fn answer(&mut self, ch: &SigningChallenge, now: i64) -> Answer {
        self.answer_with(ch, now, None)
    }

    /// [`Self::answer`], with my inputs also checked against what the Ark
    /// server's `indexer` lists (`None`: not looked up).
    pub fn answer_with(
        &mut self,
        ch: &SigningChallenge,
        now: i64,
        indexer: Option<&IndexerView>,
    ) -> Answer {
        let refuse = |refusal: Refusal| {
            Answer::Refused(
                SigningResponse {
                    v: VERSION,
                    session_id: ch.session_id,
                    step: ch.step,
                    signatures: vec![],
                    reject: Some(refusal.reject_text()),
                },
                refusal,
            )
        };
        match self.policy {
            SignPolicy::NeverAnswer => return Answer::Silent,
            SignPolicy::RejectAll => return refuse(Refusal::new("this wallet signs nothing")),
            SignPolicy::Honest => {}
        }
        let Some(session) = self.sessions.get_mut(&ch.session_id) else {
            return refuse(Refusal::new(format!(
                "session {} was not started by me (no pending intent of mine)",
                ch.session_id
            )));
        };
        if ch.expires_at != 0 && ch.expires_at < now {
            return refuse(Refusal::new("the challenge has expired"));
        }
        let ctx = Context {
            server: &self.server,
            me: &self.me,
            vtxos: &session.vtxos,
            assets: &session.assets,
            relay: &self.relay,
            indexer,
        };
        let (requests, psbts) = match ch.step {
            1 => match verify_ark_tx_challenge(&ctx, &session.intent, ch) {
                Ok(v) => {
                    let requests = v.requests.clone();
                    // One-step signing: the checkpoints follow the ark tx.
                    let mut psbts = vec![v.ark_tx.clone()];
                    psbts.extend(v.checkpoints.iter().cloned());
                    session.step1 = Some(v);
                    (requests, psbts)
                }
                Err(r) => return refuse(r),
            },
            2 => {
                let Some(step1) = session.step1.as_ref() else {
                    return refuse(Refusal::new("step 2 before I signed step 1"));
                };
                match verify_checkpoint_challenge(&ctx, step1, ch) {
                    Ok(requests) => {
                        // Decoded again (verification already proved they decode).
                        let psbts = ch
                            .payload_to_sign
                            .psbts
                            .iter()
                            .filter_map(|p| decode_psbt(p).ok())
                            .collect();
                        (requests, psbts)
                    }
                    Err(r) => return refuse(r),
                }
            }
            other => return refuse(Refusal::new(format!("unknown step {other}"))),
        };
        match sign_all(&psbts, &requests, &self.keypair) {
            Ok(signatures) => Answer::Signed(SigningResponse {
                v: VERSION,
                session_id: ch.session_id,
                step: ch.step,
                signatures,
                reject: None,
            }),
            Err(e) => refuse(Refusal::new(e)),
        }
    }
}

/// BIP-340 signatures for `requests`, over sighashes recomputed from `psbts`.
pub fn sign_all(
    psbts: &[Psbt],
    requests: &[SignRequest],
    keypair: &Keypair,
) -> Result<Vec<SignatureEntry>, String> {
    requests
        .iter()
        .map(|r| {
            let psbt = psbts
                .get(r.psbt_index)
                .ok_or_else(|| format!("no PSBT {}", r.psbt_index))?;
            let (_, sighash) = input_sighash(psbt, r.input_index).map_err(|e| e.to_string())?;
            let sig = sign_sighash(&sighash, keypair);
            Ok(SignatureEntry {
                psbt_index: u32::try_from(r.psbt_index).map_err(|e| e.to_string())?,
                input_index: u32::try_from(r.input_index).map_err(|e| e.to_string())?,
                sig: hex::encode(sig.serialize()),
            })
        })
        .collect()
}
