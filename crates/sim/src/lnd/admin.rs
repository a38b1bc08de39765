//! The simulator's own admin service (`LndSimAdmin`): the outside payer and
//! payee, scripted payment outcomes, channel and wallet controls for tests.

use super::*;

#[tonic::async_trait]
impl LndSimAdmin for LndSim {
    async fn pay_invoice(
        &self,
        req: Request<simrpc::lnd::PayInvoiceRequest>,
    ) -> Result<Response<simrpc::lnd::PayInvoiceResponse>, Status> {
        let r = req.into_inner();
        let height = self.chain.height();
        let inv = self
            .lock()
            .pay_own_invoice(&r.payment_request, r.amt_msat, height)?;
        self.emit(Event::Invoice(Box::new(inv.clone())));
        Ok(Response::new(simrpc::lnd::PayInvoiceResponse {
            payment_hash: inv.hash.to_vec(),
            state: inv.state as i32,
            htlc_expiry_height: inv.htlcs.last().map_or(0, |h| h.expiry_height),
        }))
    }

    async fn make_external_invoice(
        &self,
        req: Request<simrpc::lnd::MakeExternalInvoiceRequest>,
    ) -> Result<Response<simrpc::lnd::MakeExternalInvoiceResponse>, Status> {
        let r = req.into_inner();
        let (pr, hash, pre) = self
            .lock()
            .external_invoice(r.amt_msat, &r.memo, r.expiry_secs)?;
        Ok(Response::new(simrpc::lnd::MakeExternalInvoiceResponse {
            payment_request: pr,
            payment_hash: hash.to_vec(),
            preimage: pre.to_vec(),
        }))
    }

    async fn script_payment(
        &self,
        req: Request<simrpc::lnd::ScriptPaymentRequest>,
    ) -> Result<Response<simrpc::lnd::ScriptPaymentResponse>, Status> {
        use simrpc::lnd::PaymentOutcome as O;
        let r = req.into_inner();
        let hash = hash32(&r.payment_hash, "payment_hash")?;
        let outcome = match O::try_from(r.outcome)
            .map_err(|_| Status::invalid_argument("unknown outcome"))?
        {
            O::Succeed => Outcome::Succeed,
            O::StuckInFlight => Outcome::Stuck,
            O::FailNoRoute => Outcome::NoRoute,
            O::FailIncorrectPaymentDetails => Outcome::IncorrectDetails,
            O::DropStreamThenSucceed => Outcome::DropStreamThenSucceed,
        };
        self.lock().scripts.insert(hash, (outcome, r.fee_msat));
        Ok(Response::new(simrpc::lnd::ScriptPaymentResponse {}))
    }

    async fn resolve_payment(
        &self,
        req: Request<simrpc::lnd::ResolvePaymentRequest>,
    ) -> Result<Response<simrpc::lnd::ResolvePaymentResponse>, Status> {
        let r = req.into_inner();
        let hash = hash32(&r.payment_hash, "payment_hash")?;
        let p = self
            .lock()
            .resolve_payment(hash, r.succeed, r.failure_reason)?;
        self.emit(Event::Payment(Box::new(p)));
        Ok(Response::new(simrpc::lnd::ResolvePaymentResponse {}))
    }

    async fn drop_invoice_streams(
        &self,
        req: Request<simrpc::lnd::DropInvoiceStreamsRequest>,
    ) -> Result<Response<simrpc::lnd::DropInvoiceStreamsResponse>, Status> {
        let hash = hash32(&req.into_inner().payment_hash, "payment_hash")?;
        let n = self.events.receiver_count();
        self.emit(Event::DropStreams(hash));
        Ok(Response::new(simrpc::lnd::DropInvoiceStreamsResponse {
            dropped: u32::try_from(n).unwrap_or(u32::MAX),
        }))
    }

    async fn set_balances(
        &self,
        req: Request<simrpc::lnd::SetBalancesRequest>,
    ) -> Result<Response<simrpc::lnd::SetBalancesResponse>, Status> {
        let r = req.into_inner();
        let mut s = self.lock();
        s.local_msat = r.local_msat;
        s.remote_msat = r.remote_msat;
        s.wallet_confirmed_sat = r.wallet_confirmed_sat;
        s.wallet_unconfirmed_sat = r.wallet_unconfirmed_sat;
        Ok(Response::new(simrpc::lnd::SetBalancesResponse {}))
    }
}
