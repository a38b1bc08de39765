//! The pool's maths: a constant-product (x·y = k) market maker for gBTC/gUSD
//! with a 0.30 % fee, and LP shares. Pure integer arithmetic (u128
//! intermediates, always rounding in the pool's favour); no I/O.
//!
//! The relay knows none of this: it only checks that the intents of a batch
//! agree with each other. The pool decides which intents it is willing to sign.

/// Fee on the input of a swap, in basis points.
pub const FEE_BPS: u128 = 30;

/// Which side of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// gBTC.
    Btc,
    /// gUSD.
    Usd,
}

impl Side {
    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::Btc => Side::Usd,
            Side::Usd => Side::Btc,
        }
    }
}

/// Why the pool refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The trade is too small to move anything, or the pool is empty.
    #[error("amount too small for this pool")]
    TooSmall,
    /// Arithmetic overflow (absurd amounts).
    #[error("amount too large")]
    Overflow,
    /// More LP tokens than exist.
    #[error("only {0} LP tokens exist")]
    NotEnoughLp(u64),
}

/// Reserves and LP supply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    /// gBTC in the pool.
    pub btc: u64,
    /// gUSD in the pool.
    pub usd: u64,
    /// LP tokens outstanding (those minted for the seed liquidity included).
    pub lp_supply: u64,
}

fn to_u64(v: u128) -> Result<u64, PoolError> {
    u64::try_from(v).map_err(|_| PoolError::Overflow)
}

fn isqrt(n: u128) -> u128 {
    if n < 2 {
        return n;
    }
    let mut x = n;
    let mut y = x.div_ceil(2);
    while y < x {
        x = y;
        y = (x + n / x) / 2;
    }
    x
}

impl Pool {
    /// A pool seeded with `btc` and `usd` by its operator; the seed's LP
    /// shares (√(btc·usd)) belong to the operator and are never minted as
    /// VTXOs.
    pub fn seeded(btc: u64, usd: u64) -> Self {
        Self {
            btc,
            usd,
            lp_supply: to_u64(isqrt(u128::from(btc) * u128::from(usd))).unwrap_or(u64::MAX),
        }
    }

    fn reserve(&self, side: Side) -> u128 {
        u128::from(match side {
            Side::Btc => self.btc,
            Side::Usd => self.usd,
        })
    }

    /// What `amount_in` of `give` buys of the other asset:
    /// `out = R_out · in·(1−fee) / (R_in + in·(1−fee))`, rounded down.
    pub fn quote(&self, give: Side, amount_in: u64) -> Result<u64, PoolError> {
        let (r_in, r_out) = (self.reserve(give), self.reserve(give.other()));
        let net = u128::from(amount_in) * (10_000 - FEE_BPS);
        let out = r_out
            .checked_mul(net)
            .ok_or(PoolError::Overflow)?
            .checked_div(r_in * 10_000 + net)
            .ok_or(PoolError::TooSmall)?;
        if out == 0 {
            return Err(PoolError::TooSmall);
        }
        to_u64(out)
    }

    /// Applies a swap the batch settled.
    pub fn apply_swap(&mut self, give: Side, amount_in: u64, amount_out: u64) {
        let (i, o) = match give {
            Side::Btc => (&mut self.btc, &mut self.usd),
            Side::Usd => (&mut self.usd, &mut self.btc),
        };
        *i = i.saturating_add(amount_in);
        *o = o.saturating_sub(amount_out);
    }

    /// LP tokens due for depositing `btc` and `usd`: the smaller of the two
    /// proportional shares, rounded down (an unbalanced deposit donates the
    /// excess to the pool).
    pub fn lp_for_deposit(&self, btc: u64, usd: u64) -> Result<u64, PoolError> {
        let s = u128::from(self.lp_supply);
        let lp = if s == 0 {
            isqrt(u128::from(btc) * u128::from(usd))
        } else {
            let a = u128::from(btc) * s / self.reserve(Side::Btc).max(1);
            let b = u128::from(usd) * s / self.reserve(Side::Usd).max(1);
            a.min(b)
        };
        if lp == 0 {
            return Err(PoolError::TooSmall);
        }
        to_u64(lp)
    }

    /// Applies a deposit the batch settled.
    pub fn apply_deposit(&mut self, btc: u64, usd: u64, lp: u64) {
        self.btc = self.btc.saturating_add(btc);
        self.usd = self.usd.saturating_add(usd);
        self.lp_supply = self.lp_supply.saturating_add(lp);
    }

    /// What returning `lp` tokens pays out: `(btc, usd)`, proportional,
    /// rounded down.
    pub fn withdrawal(&self, lp: u64) -> Result<(u64, u64), PoolError> {
        if lp > self.lp_supply {
            return Err(PoolError::NotEnoughLp(self.lp_supply));
        }
        let s = u128::from(self.lp_supply.max(1));
        let btc = to_u64(self.reserve(Side::Btc) * u128::from(lp) / s)?;
        let usd = to_u64(self.reserve(Side::Usd) * u128::from(lp) / s)?;
        Ok((btc, usd))
    }

    /// Applies a withdrawal the batch settled (the LP tokens were burnt).
    pub fn apply_withdrawal(&mut self, btc: u64, usd: u64, lp: u64) {
        self.btc = self.btc.saturating_sub(btc);
        self.usd = self.usd.saturating_sub(usd);
        self.lp_supply = self.lp_supply.saturating_sub(lp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_follow_the_constant_product_with_the_fee() {
        // 10 gBTC (in sats) against 6 500 000 gUSD (in cents).
        let mut p = Pool::seeded(1_000_000_000, 650_000_000);
        let k = u128::from(p.btc) * u128::from(p.usd);
        let out = p.quote(Side::Btc, 1_000_000).expect("quote");
        // Without the fee 0.01 gBTC would buy 649 350 cents; the fee takes 0.3 % of the input.
        let no_fee = 650_000_000u64 * 1_000_000 / (1_000_000_000 + 1_000_000);
        assert!(
            out < no_fee && out > no_fee * 996 / 1000,
            "{out} vs {no_fee}"
        );
        p.apply_swap(Side::Btc, 1_000_000, out);
        assert!(
            u128::from(p.btc) * u128::from(p.usd) >= k,
            "k never shrinks"
        );
        assert_eq!(p.quote(Side::Usd, 0), Err(PoolError::TooSmall));
    }

    #[test]
    fn liquidity_in_and_out_is_proportional() {
        let mut p = Pool::seeded(10_000, 6_500_000);
        let lp = p.lp_for_deposit(1_000, 650_000).expect("lp");
        assert_eq!(lp, p.lp_supply / 10);
        p.apply_deposit(1_000, 650_000, lp);
        let (b, u) = p.withdrawal(lp).expect("out");
        assert_eq!((b, u), (1_000, 650_000));
        p.apply_withdrawal(b, u, lp);
        assert_eq!(p, Pool::seeded(10_000, 6_500_000));
        assert!(matches!(
            p.withdrawal(p.lp_supply + 1),
            Err(PoolError::NotEnoughLp(_))
        ));
        // An unbalanced deposit gets the smaller share.
        assert_eq!(
            p.lp_for_deposit(2_000, 650_000).expect("lp"),
            p.lp_for_deposit(1_000, 650_000).expect("lp")
        );
    }
}
