//! Integer money. [`Sats`] counts bitcoin satoshis (carrier amounts of VTXOs);
//! [`AssetAmount`] counts base units of one Taproot Asset (the colour). The two
//! types cannot be mixed, and all arithmetic is checked: overflow is a value
//! (`None`), never a wrap or a panic. There are no floats anywhere in money code.
#![deny(clippy::arithmetic_side_effects)]

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! amount_type {
    ($(#[$doc:meta])* $name:ident, $unit:literal) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(u64);

        impl $name {
            /// Zero.
            pub const ZERO: Self = Self(0);
            /// The largest amount that still fits a signed 64-bit database column.
            pub const MAX: Self = Self(i64::MAX as u64);

            /// Wraps a raw integer amount.
            pub const fn new(value: u64) -> Self {
                Self(value)
            }

            /// The raw integer amount.
            pub const fn get(self) -> u64 {
                self.0
            }

            /// `self + rhs`, or `None` on overflow past [`Self::MAX`].
            pub fn checked_add(self, rhs: Self) -> Option<Self> {
                self.0.checked_add(rhs.0).filter(|v| *v <= Self::MAX.0).map(Self)
            }

            /// `self - rhs`, or `None` when it would go below zero.
            pub fn checked_sub(self, rhs: Self) -> Option<Self> {
                self.0.checked_sub(rhs.0).map(Self)
            }

            /// Sums an iterator of amounts, or `None` on overflow.
            pub fn checked_sum<I: IntoIterator<Item = Self>>(iter: I) -> Option<Self> {
                iter.into_iter().try_fold(Self::ZERO, Self::checked_add)
            }

            /// The amount as a signed database integer (`BIGINT`).
            pub fn to_i64(self) -> Option<i64> {
                i64::try_from(self.0).ok()
            }

            /// Reads a signed database integer; negative values are rejected.
            pub fn from_i64(value: i64) -> Option<Self> {
                u64::try_from(value).ok().map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} {}", self.0, $unit)
            }
        }
    };
}

amount_type!(
    /// An amount of bitcoin in satoshis.
    Sats,
    "sat"
);
amount_type!(
    /// An amount of one asset in its base units (for gBTC, 1 unit = 1 sat of reserve).
    AssetAmount,
    "units"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_arithmetic() {
        assert_eq!(Sats::new(1).checked_add(Sats::new(2)), Some(Sats::new(3)));
        assert_eq!(Sats::MAX.checked_add(Sats::new(1)), None);
        assert_eq!(Sats::new(1).checked_sub(Sats::new(2)), None);
        assert_eq!(
            AssetAmount::checked_sum([AssetAmount::new(4), AssetAmount::new(5)]),
            Some(AssetAmount::new(9))
        );
        assert_eq!(
            AssetAmount::checked_sum([AssetAmount::MAX, AssetAmount::new(1)]),
            None
        );
    }

    #[test]
    fn database_round_trip() {
        assert_eq!(Sats::from_i64(-1), None);
        assert_eq!(Sats::from_i64(42).and_then(Sats::to_i64), Some(42));
        assert_eq!(Sats::new(u64::MAX).to_i64(), None);
    }

    #[test]
    fn display_has_unit() {
        assert_eq!(Sats::new(330).to_string(), "330 sat");
        assert_eq!(AssetAmount::new(5).to_string(), "5 units");
    }
}
