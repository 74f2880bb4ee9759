//! Trino's aggregate functions that DataFusion lacks: `count_if`, `approx_percentile` (computed
//! exactly, of the input's type), and `max_by` / `min_by`.

use std::cmp::Ordering;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};
use datafusion::scalar::ScalarValue;

use super::{exec_error, plan_error};

/// `count_if(condition)`: the rows where the condition is true.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct CountIf {
    signature: CountIfSignature,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct CountIfSignature(Signature);

impl Default for CountIfSignature {
    fn default() -> Self {
        CountIfSignature(Signature::exact(vec![DataType::Boolean], Volatility::Immutable))
    }
}

impl AggregateUDFImpl for CountIf {
    fn name(&self) -> &str {
        "count_if"
    }
    fn signature(&self) -> &Signature {
        &self.signature.0
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }
    fn state_fields(&self, _args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new("count_if", DataType::Int64, true))])
    }
    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(CountIfAccumulator(0)))
    }
    fn default_value(&self, _data_type: &DataType) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(0)))
    }
}

#[derive(Debug)]
struct CountIfAccumulator(i64);

impl Accumulator for CountIfAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let conditions = values[0].as_boolean();
        self.0 += conditions.iter().filter(|v| *v == Some(true)).count() as i64;
        Ok(())
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.0 += states[0].as_primitive::<Int64Type>().iter().flatten().sum::<i64>();
        Ok(())
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Int64(Some(self.0))])
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(self.0)))
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

/// `approx_percentile(x, p)`: the value at rank `p` of the group's values (nearest rank), of
/// `x`'s type as Trino returns it. Exact, which is within any approximation's error.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct ApproxPercentile {
    signature: Signature,
}

impl Default for ApproxPercentile {
    fn default() -> Self {
        ApproxPercentile { signature: Signature::any(2, Volatility::Immutable) }
    }
}

impl AggregateUDFImpl for ApproxPercentile {
    fn name(&self) -> &str {
        "approx_percentile"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args.first() {
            Some(t) if t.is_numeric() => Ok(t.clone()),
            other => Err(plan_error(format!("approx_percentile: a number is needed, not {other:?}"))),
        }
    }
    fn state_fields(&self, _args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new("values", DataType::List(Arc::new(Field::new("item", DataType::Float64, true))), true)),
            Arc::new(Field::new("percentile", DataType::Float64, true)),
        ])
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(PercentileAccumulator { values: Vec::new(), percentile: None, return_type: args.return_field.data_type().clone() }))
    }
}

#[derive(Debug)]
struct PercentileAccumulator {
    values: Vec<f64>,
    percentile: Option<f64>,
    return_type: DataType,
}

impl Accumulator for PercentileAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let x = arrow::compute::cast(&values[0], &DataType::Float64)?;
        self.values.extend(x.as_primitive::<arrow::datatypes::Float64Type>().iter().flatten());
        let p = arrow::compute::cast(&values[1], &DataType::Float64)?;
        if let Some(p) = p.as_primitive::<arrow::datatypes::Float64Type>().iter().flatten().next() {
            if !(0.0..=1.0).contains(&p) {
                return Err(exec_error(format!("approx_percentile: the percentage must be between 0 and 1, not {p}")));
            }
            self.percentile = Some(p);
        }
        Ok(())
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for row in 0..states[0].len() {
            if states[0].is_valid(row) {
                let list = states[0].as_list::<i32>().value(row);
                self.values.extend(list.as_primitive::<arrow::datatypes::Float64Type>().iter().flatten());
            }
        }
        if let Some(p) = states[1].as_primitive::<arrow::datatypes::Float64Type>().iter().flatten().next() {
            self.percentile = Some(p);
        }
        Ok(())
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values: Vec<ScalarValue> = self.values.iter().map(|v| ScalarValue::Float64(Some(*v))).collect();
        Ok(vec![ScalarValue::List(ScalarValue::new_list_nullable(&values, &DataType::Float64)), ScalarValue::Float64(self.percentile)])
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        let (Some(p), false) = (self.percentile, self.values.is_empty()) else {
            return ScalarValue::try_from(&self.return_type);
        };
        self.values.sort_by(|a, b| a.total_cmp(b));
        let rank = (p * (self.values.len() - 1) as f64).round() as usize;
        ScalarValue::Float64(Some(self.values[rank.min(self.values.len() - 1)])).cast_to(&self.return_type)
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.capacity() * std::mem::size_of::<f64>()
    }
}


/// `max_by(x, y)` / `min_by(x, y)`: the `x` of the row with the largest (smallest) `y`; rows
/// whose `y` is NULL are ignored, as in Trino.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct ValueBy {
    largest: bool,
    signature: Signature,
}

impl ValueBy {
    pub(super) fn max_by() -> Self {
        ValueBy { largest: true, signature: Signature::any(2, Volatility::Immutable) }
    }
    pub(super) fn min_by() -> Self {
        ValueBy { largest: false, signature: Signature::any(2, Volatility::Immutable) }
    }
}

impl AggregateUDFImpl for ValueBy {
    fn name(&self) -> &str {
        if self.largest {
            "max_by"
        } else {
            "min_by"
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        args.first().cloned().ok_or_else(|| plan_error(format!("{}: use {}(x, y)", self.name(), self.name())))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let types: Vec<DataType> = args.input_fields.iter().map(|f| f.data_type().clone()).collect();
        let (Some(x), Some(y)) = (types.first(), types.get(1)) else {
            return Err(plan_error(format!("{}: use {}(x, y)", self.name(), self.name())));
        };
        Ok(vec![Arc::new(Field::new("x", x.clone(), true)), Arc::new(Field::new("y", y.clone(), true))])
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let null_of = |i: usize| args.expr_fields.get(i).map_or(Ok(ScalarValue::Null), |f| ScalarValue::try_from(f.data_type()));
        Ok(Box::new(ValueByAccumulator { largest: self.largest, best: None, null_x: null_of(0)?, null_y: null_of(1)? }))
    }
}

#[derive(Debug)]
struct ValueByAccumulator {
    largest: bool,
    /// The (y, x) chosen so far.
    best: Option<(ScalarValue, ScalarValue)>,
    null_x: ScalarValue,
    null_y: ScalarValue,
}

impl ValueByAccumulator {
    fn offer(&mut self, xs: &ArrayRef, ys: &ArrayRef) -> Result<()> {
        for row in 0..ys.len() {
            if ys.is_null(row) {
                continue;
            }
            let y = ScalarValue::try_from_array(ys, row)?;
            let better = match &self.best {
                None => true,
                Some((best, _)) => {
                    let order = y.partial_cmp(best).ok_or_else(|| exec_error(format!("max_by/min_by: {y} and {best} cannot be compared")))?;
                    if self.largest {
                        order == Ordering::Greater
                    } else {
                        order == Ordering::Less
                    }
                }
            };
            if better {
                self.best = Some((y, ScalarValue::try_from_array(xs, row)?));
            }
        }
        Ok(())
    }
}

impl Accumulator for ValueByAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.offer(&values[0], &values[1])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.offer(&states[0], &states[1])
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(match &self.best {
            Some((y, x)) => vec![x.clone(), y.clone()],
            None => vec![self.null_x.clone(), self.null_y.clone()],
        })
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.best.as_ref().map_or_else(|| self.null_x.clone(), |(_, x)| x.clone()))
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.best.as_ref().map_or(0, |(y, x)| y.size() + x.size())
    }
}
