//! lnd's `invoicesrpc.Invoices` service: hold invoices (add, settle, cancel, subscribe).

use super::*;

#[tonic::async_trait]
impl Invoices for LndSim {
    type SubscribeSingleInvoiceStream = GrpcStream<lnrpc::Invoice>;

    async fn subscribe_single_invoice(
        &self,
        req: Request<invoicesrpc::SubscribeSingleInvoiceRequest>,
    ) -> Result<Response<Self::SubscribeSingleInvoiceStream>, Status> {
        let hash = hash32(&req.into_inner().r_hash, "r_hash")?;
        let s = self.lock();
        let rx = self.events.subscribe();
        let current = s
            .invoices
            .get(&hash)
            .ok_or_else(|| Status::not_found("unable to locate invoice"))?;
        let terminal = matches!(current.state, InvState::Settled | InvState::Canceled);
        let first = vec![Ok(to_invoice(current))];
        drop(s);
        let rx = (!terminal).then_some(rx);
        Ok(Response::new(event_stream(first, rx, move |ev| match ev {
            Event::Invoice(i) if i.hash == hash => {
                if matches!(i.state, InvState::Settled | InvState::Canceled) {
                    Step::YieldAndEnd(to_invoice(&i))
                } else {
                    Step::Yield(to_invoice(&i))
                }
            }
            Event::DropStreams(h) if h == hash => {
                Step::Fail(Status::unavailable("stream dropped (fault injection)"))
            }
            _ => Step::Skip,
        })))
    }

    async fn cancel_invoice(
        &self,
        req: Request<invoicesrpc::CancelInvoiceMsg>,
    ) -> Result<Response<invoicesrpc::CancelInvoiceResp>, Status> {
        let hash = hash32(&req.into_inner().payment_hash, "payment_hash")?;
        let (inv, changed) = self.lock().cancel(hash)?;
        if changed {
            self.emit(Event::Invoice(Box::new(inv)));
        }
        Ok(Response::new(invoicesrpc::CancelInvoiceResp {}))
    }

    async fn add_hold_invoice(
        &self,
        req: Request<invoicesrpc::AddHoldInvoiceRequest>,
    ) -> Result<Response<invoicesrpc::AddHoldInvoiceResp>, Status> {
        let r = req.into_inner();
        let hash = hash32(&r.hash, "hash")?;
        let value_msat = if r.value_msat > 0 {
            r.value_msat
        } else {
            r.value.saturating_mul(1000)
        };
        let inv = self.add_invoice_inner(NewInvoice {
            memo: r.memo,
            hold_hash: Some(hash),
            value_msat: u64::try_from(value_msat)
                .map_err(|_| Status::invalid_argument("negative amount"))?,
            expiry: u64::try_from(r.expiry).unwrap_or(0),
            cltv_expiry: r.cltv_expiry,
            ..NewInvoice::default()
        })?;
        Ok(Response::new(invoicesrpc::AddHoldInvoiceResp {
            payment_request: inv.payment_request,
            add_index: inv.add_index,
            payment_addr: inv.payment_addr.to_vec(),
        }))
    }

    async fn settle_invoice(
        &self,
        req: Request<invoicesrpc::SettleInvoiceMsg>,
    ) -> Result<Response<invoicesrpc::SettleInvoiceResp>, Status> {
        let pre = hash32(&req.into_inner().preimage, "preimage")?;
        let (inv, changed) = self.lock().settle(pre)?;
        if changed {
            self.emit(Event::Invoice(Box::new(inv)));
        }
        Ok(Response::new(invoicesrpc::SettleInvoiceResp {}))
    }

    async fn lookup_invoice_v2(
        &self,
        req: Request<invoicesrpc::LookupInvoiceMsg>,
    ) -> Result<Response<lnrpc::Invoice>, Status> {
        use invoicesrpc::lookup_invoice_msg::InvoiceRef;
        let s = self.lock();
        let inv = match req.into_inner().invoice_ref {
            Some(InvoiceRef::PaymentHash(h)) => s.invoices.get(&hash32(&h, "payment_hash")?),
            Some(InvoiceRef::PaymentAddr(a)) => {
                let a = hash32(&a, "payment_addr")?;
                s.invoices.values().find(|i| i.payment_addr == a)
            }
            _ => {
                return Err(Status::invalid_argument(
                    "payment_hash or payment_addr required",
                ))
            }
        };
        inv.map(|i| Response::new(to_invoice(i)))
            .ok_or_else(|| Status::not_found("unable to locate invoice"))
    }
}
