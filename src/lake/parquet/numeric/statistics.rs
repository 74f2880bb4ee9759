//! Minimum and maximum of numeric pages and column chunks, as the `parquet` crate computes
//! them (NaN skipped, a minimum of zero stored as -0.0 and a maximum as +0.0, unsigned types in
//! unsigned order), and the page index built from them.

use parquet::basic::BoundaryOrder;
use parquet::file::metadata::{ColumnIndexBuilder, LevelHistogram};
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::statistics::{Statistics, ValueStatistics};
use parquet::schema::types::ColumnDescPtr;

use super::{Kind, Result};

/// A value's place in its column's sort order (signed or unsigned integers, floats).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
enum Ordered {
    Int(i128),
    Float(f64),
}

/// Minimum and maximum of some values, in the column's order and as their PLAIN bytes.
#[derive(Debug, Clone)]
pub(super) struct MinMax {
    min: (Ordered, Vec<u8>),
    max: (Ordered, Vec<u8>),
}

/// The minimum and maximum of `values` of `kind` (little-endian bytes), NaN skipped; `None`
/// when there are none. Float zeros follow the Parquet rule: a minimum of zero is -0.0, a
/// maximum of zero +0.0.
pub(super) fn min_max(kind: Kind, values: &[u8]) -> Option<MinMax> {
    fn ints<T: LeBytes + Ord + Copy + Into<i128>>(values: &[u8]) -> Option<MinMax> {
        let mut values = values.chunks_exact(std::mem::size_of::<T>()).map(T::from_le_slice);
        let first = values.next()?;
        let (lo, hi) = values.fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v)));
        Some(MinMax {
            min: (Ordered::Int(lo.into()), lo.to_le_vec()),
            max: (Ordered::Int(hi.into()), hi.to_le_vec()),
        })
    }
    fn floats<T: num_like::Float>(values: &[u8]) -> Option<MinMax> {
        let mut values = values.chunks_exact(std::mem::size_of::<T>()).map(T::from_le_slice).filter(|v| !v.is_nan_value());
        let first = values.next()?;
        // The first of equal values (both zeros compare equal) stays, as in the crate.
        let (lo, hi) = values.fold((first, first), |(lo, hi), v| (if v < lo { v } else { lo }, if v > hi { v } else { hi }));
        let (lo, hi) = (lo.zero_as(true), hi.zero_as(false));
        Some(MinMax {
            min: (Ordered::Float(lo.as_f64()), lo.to_le_vec()),
            max: (Ordered::Float(hi.as_f64()), hi.to_le_vec()),
        })
    }
    match kind {
        Kind::I32 => ints::<i32>(values),
        Kind::U32 => ints::<u32>(values),
        Kind::I64 => ints::<i64>(values),
        Kind::U64 => ints::<u64>(values),
        Kind::F32 => floats::<f32>(values),
        Kind::F64 => floats::<f64>(values),
    }
}

/// Reading and writing the native types here from little-endian bytes.
trait LeBytes: Sized {
    fn from_le_slice(bytes: &[u8]) -> Self;
    fn to_le_vec(self) -> Vec<u8>;
}

macro_rules! le_bytes {
    ($($t:ty),*) => {$(
        impl LeBytes for $t {
            #[inline(always)]
            fn from_le_slice(bytes: &[u8]) -> Self {
                let mut raw = [0u8; std::mem::size_of::<$t>()];
                raw.copy_from_slice(bytes);
                <$t>::from_le_bytes(raw)
            }
            fn to_le_vec(self) -> Vec<u8> {
                self.to_le_bytes().to_vec()
            }
        }
    )*};
}
le_bytes!(i32, u32, i64, u64, f32, f64);

/// What statistics need of the two float types.
mod num_like {
    pub trait Float: Copy + PartialOrd + super::LeBytes {
        fn is_nan_value(self) -> bool;
        /// Zero with the sign Parquet statistics use: negative for a minimum, positive for a maximum.
        fn zero_as(self, minimum: bool) -> Self;
        fn as_f64(self) -> f64;
    }

    macro_rules! float {
        ($($t:ty),*) => {$(
            impl Float for $t {
                fn is_nan_value(self) -> bool {
                    self.is_nan()
                }
                fn zero_as(self, minimum: bool) -> Self {
                    if self == 0.0 { if minimum { -0.0 } else { 0.0 } } else { self }
                }
                fn as_f64(self) -> f64 {
                    self as f64
                }
            }
        )*};
    }
    float!(f32, f64);
}

/// The page index of a chunk being written: per-page minimum, maximum and null count, and
/// whether the pages' bounds ascend or descend.
pub(super) struct PageStatistics {
    index: ColumnIndexBuilder,
    last: Option<MinMax>,
    ascending: bool,
    descending: bool,
    chunk: Option<MinMax>,
    nulls: i64,
    /// How many values of the chunk have each definition level (for leaves that have levels).
    definition_levels: Option<LevelHistogram>,
}

impl PageStatistics {
    pub(super) fn new(descr: &ColumnDescPtr) -> Self {
        PageStatistics {
            index: ColumnIndexBuilder::new(descr.physical_type()),
            last: None,
            ascending: true,
            descending: true,
            chunk: None,
            nulls: 0,
            definition_levels: LevelHistogram::try_new(descr.max_def_level()),
        }
    }

    /// Adds a page's statistics: its bounds, rows, nulls and the histogram of its definition
    /// levels.
    pub(super) fn add_page(&mut self, bounds: Option<MinMax>, rows: usize, nulls: usize, levels: Option<LevelHistogram>) {
        self.nulls += nulls as i64;
        if let (Some(chunk), Some(page)) = (self.definition_levels.as_mut(), levels.as_ref()) {
            chunk.add(page);
        }
        self.add_bounds(bounds, rows, nulls);
        self.index.append_histograms(&None, &levels);
    }

    fn add_bounds(&mut self, bounds: Option<MinMax>, rows: usize, nulls: usize) {
        if nulls == rows {
            if self.index.valid() {
                self.index.append(true, Vec::new(), Vec::new(), nulls as i64);
            }
            return;
        }
        let Some(bounds) = bounds else {
            // Only NaN: no bounds for this page, so no usable page index for the chunk.
            self.index.to_invalid();
            return;
        };
        if let Some(last) = &self.last {
            self.ascending &= !(last.min.0 > bounds.min.0 || last.max.0 > bounds.max.0);
            self.descending &= !(bounds.min.0 > last.min.0 || bounds.max.0 > last.max.0);
        }
        if self.index.valid() {
            self.index.append(false, bounds.min.1.clone(), bounds.max.1.clone(), nulls as i64);
        }
        self.chunk = Some(match self.chunk.take() {
            None => bounds.clone(),
            Some(chunk) => MinMax {
                min: if bounds.min.0 < chunk.min.0 { bounds.min.clone() } else { chunk.min },
                max: if bounds.max.0 > chunk.max.0 { bounds.max.clone() } else { chunk.max },
            },
        });
        self.last = Some(bounds);
    }

    /// The chunk's statistics and its column index (`None` when a page had no bounds).
    pub(super) fn finish(mut self, kind: Kind) -> Result<(Statistics, Option<LevelHistogram>, Option<ColumnIndexMetaData>)> {
        let order = match (self.ascending, self.descending) {
            (true, _) => BoundaryOrder::ASCENDING,
            (false, true) => BoundaryOrder::DESCENDING,
            (false, false) => BoundaryOrder::UNORDERED,
        };
        self.index.set_boundary_order(order);
        let nulls = Some(self.nulls as u64);
        let (lo, hi) = match &self.chunk {
            Some(b) => (Some(b.min.1.as_slice()), Some(b.max.1.as_slice())),
            None => (None, None),
        };
        // Unsigned columns keep only the typed min/max: the deprecated fields assume signed order.
        let signed = !matches!(kind, Kind::U32 | Kind::U64);
        fn typed<T: LeBytes + Clone>(lo: Option<&[u8]>, hi: Option<&[u8]>, nulls: Option<u64>, signed: bool) -> ValueStatistics<T> {
            ValueStatistics::new(lo.map(T::from_le_slice), hi.map(T::from_le_slice), None, nulls, false)
                .with_backwards_compatible_min_max(signed)
        }
        let statistics = match kind {
            Kind::I32 | Kind::U32 => Statistics::Int32(typed(lo, hi, nulls, signed)),
            Kind::I64 | Kind::U64 => Statistics::Int64(typed(lo, hi, nulls, signed)),
            Kind::F32 => Statistics::Float(typed(lo, hi, nulls, signed)),
            Kind::F64 => Statistics::Double(typed(lo, hi, nulls, signed)),
        };
        let index = if self.index.valid() { Some(self.index.build()?) } else { None };
        Ok((statistics, self.definition_levels, index))
    }
}

