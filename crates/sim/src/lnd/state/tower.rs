//! The payment control tower (`SendPaymentV2`/`TrackPaymentV2`): one
//! payment per hash, scripted outcomes, and their resolution.

use super::*;

impl LndState {
    /// SendPaymentV2's control tower. `fee_limit_msat` caps the fee.
    pub fn send_payment(
        &mut self,
        pay_req: &str,
        amt_msat: u64,
        fee_limit_msat: u64,
    ) -> Result<SendDecision, SimError> {
        let inv: Bolt11Invoice = pay_req
            .parse()
            .map_err(|e| SimError::Invalid(format!("invalid payment request: {e}")))?;
        if inv.currency() != Currency::Regtest {
            return Err(SimError::Invalid(
                "invoice not for current active network 'regtest'".into(),
            ));
        }
        if inv.is_expired() {
            return Err(SimError::Invalid("invoice expired".into()));
        }
        let hash = inv.payment_hash().to_byte_array();
        let value = match (inv.amount_milli_satoshis(), amt_msat) {
            (Some(a), 0) => a,
            (Some(a), b) if a == b => a,
            (Some(_), _) => {
                return Err(SimError::Invalid(
                    "amount must not be specified when paying a non-zero amount invoice".into(),
                ))
            }
            (None, 0) => {
                return Err(SimError::Invalid(
                    "amount must be specified when paying a zero amount invoice".into(),
                ))
            }
            (None, b) => b,
        };
        if let Some(p) = self.payments.get(&hash) {
            match p.status {
                PayStatus::InFlight => {
                    return Err(SimError::AlreadyExists("payment is in transition".into()))
                }
                PayStatus::Succeeded => {
                    return Err(SimError::AlreadyExists("invoice is already paid".into()))
                }
                PayStatus::Failed => {}
            }
        }
        let own = inv.recover_payee_pub_key() == self.node_id;
        let (outcome, fee) = match self.scripts.remove(&hash) {
            Some(s) => s,
            None if own => (Outcome::NoRoute, 0),
            None if self.external_preimages.contains_key(&hash) => (Outcome::Succeed, 1_000),
            None => (Outcome::NoRoute, 0),
        };
        self.next_payment_index = self.next_payment_index.saturating_add(1);
        let mut p = SimPayment {
            hash,
            status: PayStatus::InFlight,
            preimage: None,
            value_msat: value,
            fee_msat: 0,
            failure_reason: reason::NONE,
            payment_index: self.next_payment_index,
            payment_request: pay_req.to_owned(),
            creation_time_ns: i64::try_from(now().as_nanos()).unwrap_or(i64::MAX),
        };
        let mut drop_stream = false;
        let fail = |p: &mut SimPayment, r: i32| {
            p.status = PayStatus::Failed;
            p.failure_reason = r;
        };
        if fee > fee_limit_msat {
            fail(&mut p, reason::NO_ROUTE);
        } else if value.saturating_add(fee) > self.local_msat {
            fail(&mut p, reason::INSUFFICIENT_BALANCE);
        } else {
            match outcome {
                Outcome::Succeed | Outcome::DropStreamThenSucceed => {
                    match self.external_preimages.get(&hash) {
                        Some(pre) => {
                            p.status = PayStatus::Succeeded;
                            p.preimage = Some(*pre);
                            p.fee_msat = fee;
                            self.local_msat =
                                self.local_msat.saturating_sub(value.saturating_add(fee));
                            drop_stream = outcome == Outcome::DropStreamThenSucceed;
                        }
                        None => fail(&mut p, reason::INCORRECT_PAYMENT_DETAILS),
                    }
                }
                Outcome::Stuck => p.fee_msat = fee,
                Outcome::NoRoute => fail(&mut p, reason::NO_ROUTE),
                Outcome::IncorrectDetails => fail(&mut p, reason::INCORRECT_PAYMENT_DETAILS),
            }
        }
        self.payments.insert(hash, p.clone());
        Ok(SendDecision {
            payment: p,
            drop_stream,
        })
    }

    /// Resolves an in-flight payment.
    pub fn resolve_payment(
        &mut self,
        hash: [u8; 32],
        succeed: bool,
        failure_reason: i32,
    ) -> Result<SimPayment, SimError> {
        let pre = self.external_preimages.get(&hash).copied();
        let local = self.local_msat;
        let p = self
            .payments
            .get_mut(&hash)
            .ok_or_else(|| SimError::NotFound("payment isn't initiated".into()))?;
        if p.status != PayStatus::InFlight {
            return Err(SimError::Precondition("payment is not in flight".into()));
        }
        if succeed {
            let pre =
                pre.ok_or_else(|| SimError::Precondition("preimage unknown to the sim".into()))?;
            p.status = PayStatus::Succeeded;
            p.preimage = Some(pre);
            self.local_msat = local.saturating_sub(p.value_msat.saturating_add(p.fee_msat));
        } else {
            p.status = PayStatus::Failed;
            p.failure_reason = if failure_reason == 0 {
                reason::NO_ROUTE
            } else {
                failure_reason
            };
        }
        Ok(p.clone())
    }
}
