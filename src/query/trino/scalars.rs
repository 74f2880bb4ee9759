//! Trino scalar functions that are plain functions of their arguments' values: date and time
//! fields (`year` … `second`, `day_of_week`, `day_of_year`, `quarter`, `week`), `split`,
//! `slice`, `regexp_extract`, `json_extract` and `json_array_length`. Each is a [`Simple`]
//! function: a name, how it is called, its return type and a function over whole arrays.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, ListArray, ListBuilder, StringArray, StringBuilder, UInt32Array};
use arrow::buffer::OffsetBuffer;
use arrow::compute::kernels::temporal::{date_part, DatePart};
use arrow::datatypes::{DataType, Field, Int64Type};
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

use super::{exec_error, json, plan_error, text};

/// Every function of this module.
pub(super) fn functions() -> Vec<ScalarUDF> {
    let mut out: Vec<Simple> = [
        ("year", DatePart::Year),
        ("quarter", DatePart::Quarter),
        ("month", DatePart::Month),
        ("week", DatePart::Week),
        ("week_of_year", DatePart::Week),
        ("day", DatePart::Day),
        ("day_of_month", DatePart::Day),
        ("day_of_week", DatePart::DayOfWeekMonday1),
        ("dow", DatePart::DayOfWeekMonday1),
        ("day_of_year", DatePart::DayOfYear),
        ("doy", DatePart::DayOfYear),
        ("hour", DatePart::Hour),
        ("minute", DatePart::Minute),
        ("second", DatePart::Second),
        ("millisecond", DatePart::Millisecond),
    ]
    .into_iter()
    .map(|(name, part)| Simple { name, usage: "(timestamp)", arity: 1..=1, returns: Returns::Int64, invoke: Invoke::Part(part) })
    .collect();
    out.extend([
        Simple { name: "split", usage: "(string, delimiter)", arity: 2..=2, returns: Returns::Strings, invoke: Invoke::Arrays(split) },
        Simple { name: "slice", usage: "(array, start, length)", arity: 3..=3, returns: Returns::First, invoke: Invoke::Arrays(slice) },
        Simple { name: "regexp_extract", usage: "(string, pattern[, group])", arity: 2..=3, returns: Returns::Text, invoke: Invoke::Arrays(regexp_extract) },
        Simple { name: "json_extract", usage: "(json, json_path)", arity: 2..=2, returns: Returns::Text, invoke: Invoke::Arrays(json::json_extract) },
        Simple { name: "json_array_length", usage: "(json)", arity: 1..=1, returns: Returns::Int64, invoke: Invoke::Arrays(json::json_array_length) },
    ]);
    out.into_iter().map(ScalarUDF::new_from_impl).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Returns {
    Int64,
    Text,
    Strings,
    /// The type of the first argument.
    First,
}

#[derive(Debug, Clone, Copy)]
enum Invoke {
    /// A field of a timestamp, as Trino's `bigint`.
    Part(DatePart),
    Arrays(fn(&[ArrayRef]) -> Result<ArrayRef>),
}

/// A function of whole argument arrays (scalar arguments come as arrays of the batch's length).
#[derive(Debug)]
struct Simple {
    name: &'static str,
    usage: &'static str,
    arity: std::ops::RangeInclusive<usize>,
    returns: Returns,
    invoke: Invoke,
}

impl PartialEq for Simple {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for Simple {}
impl Hash for Simple {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state)
    }
}

static ANY: std::sync::LazyLock<Signature> = std::sync::LazyLock::new(|| Signature::variadic_any(Volatility::Immutable));

impl ScalarUDFImpl for Simple {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &ANY
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if !self.arity.contains(&args.len()) {
            return Err(plan_error(format!("{}: use {}{}", self.name, self.name, self.usage)));
        }
        Ok(match self.returns {
            Returns::Int64 => DataType::Int64,
            Returns::Text => DataType::Utf8,
            Returns::Strings => DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            Returns::First => args[0].clone(),
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let all_scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out = match self.invoke {
            Invoke::Part(part) => {
                let values = date_part(arrays[0].as_ref(), part).map_err(|e| exec_error(format!("{}: {e}", self.name)))?;
                arrow::compute::cast(&values, &DataType::Int64)?
            }
            Invoke::Arrays(f) => f(&arrays)?,
        };
        Ok(if all_scalar {
            ColumnarValue::Scalar(datafusion::scalar::ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(out)
        })
    }
}

/// `split(string, delimiter)`: the pieces between delimiters, as an array.
fn split(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let (strings, delimiters) = (text(&arrays[0])?, text(&arrays[1])?);
    let mut out = ListBuilder::new(StringBuilder::new());
    for i in 0..strings.len() {
        if strings.is_null(i) || delimiters.is_null(i) {
            out.append_null();
            continue;
        }
        let delimiter = delimiters.value(i);
        if delimiter.is_empty() {
            return Err(exec_error("split: the delimiter is empty"));
        }
        for piece in strings.value(i).split(delimiter) {
            out.values().append_value(piece);
        }
        out.append(true);
    }
    Ok(Arc::new(out.finish()))
}

/// `slice(array, start, length)`: `length` elements from the 1-based `start` (negative counts
/// from the end); fewer at the end of the array.
fn slice(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let DataType::List(item) = arrays[0].data_type() else {
        return Err(exec_error(format!("slice: an array is needed, not {}", arrays[0].data_type())));
    };
    let list = arrays[0].as_list::<i32>();
    let starts = arrow::compute::cast(&arrays[1], &DataType::Int64)?;
    let lengths = arrow::compute::cast(&arrays[2], &DataType::Int64)?;
    let (starts, lengths) = (starts.as_primitive::<Int64Type>(), lengths.as_primitive::<Int64Type>());
    let mut picks: Vec<u32> = Vec::new();
    let mut offsets = vec![0i32];
    for row in 0..list.len() {
        if list.is_valid(row) && starts.is_valid(row) && lengths.is_valid(row) {
            let (start, length) = (starts.value(row), lengths.value(row));
            if start == 0 {
                return Err(exec_error("slice: SQL array indices start at 1"));
            }
            if length < 0 {
                return Err(exec_error(format!("slice: the length must not be negative, not {length}")));
            }
            let (first, n) = (list.value_offsets()[row] as i64, list.value_length(row) as i64);
            let from = if start > 0 { start - 1 } else { n + start };
            if (0..n).contains(&from) {
                let to = (from + length).min(n);
                picks.extend((first + from..first + to).map(|i| i as u32));
            }
        }
        offsets.push(i32::try_from(picks.len()).map_err(|_| exec_error("slice: result too large"))?);
    }
    let values = arrow::compute::take(list.values().as_ref(), &UInt32Array::from(picks), None)?;
    let nulls = arrow::buffer::NullBuffer::union(list.nulls(), arrow::buffer::NullBuffer::union(starts.nulls(), lengths.nulls()).as_ref());
    Ok(Arc::new(ListArray::try_new(item.clone(), OffsetBuffer::new(offsets.into()), values, nulls)?))
}

/// `regexp_extract(string, pattern[, group])`: the first match of `pattern` (or its capture
/// `group`); NULL when it does not match.
fn regexp_extract(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let (strings, patterns) = (text(&arrays[0])?, text(&arrays[1])?);
    let groups = match arrays.get(2) {
        Some(g) => arrow::compute::cast(g, &DataType::Int64)?,
        None => Arc::new(Int64Array::from(vec![0; strings.len()])),
    };
    let groups = groups.as_primitive::<Int64Type>();
    let mut compiled: Option<(String, regex::Regex)> = None;
    let mut out = Vec::with_capacity(strings.len());
    for i in 0..strings.len() {
        if strings.is_null(i) || patterns.is_null(i) || groups.is_null(i) {
            out.push(None);
            continue;
        }
        let pattern = patterns.value(i);
        if compiled.as_ref().is_none_or(|(p, _)| p != pattern) {
            let re = regex::Regex::new(pattern).map_err(|e| exec_error(format!("regexp_extract: pattern {pattern:?}: {e}")))?;
            compiled = Some((pattern.to_string(), re));
        }
        let Some((_, re)) = &compiled else { continue };
        let group = usize::try_from(groups.value(i)).ok().filter(|g| *g < re.captures_len());
        let Some(group) = group else {
            return Err(exec_error(format!("regexp_extract: pattern {pattern:?} has no group {}", groups.value(i))));
        };
        out.push(re.captures(strings.value(i)).and_then(|c| c.get(group)).map(|m| m.as_str().to_string()));
    }
    Ok(Arc::new(StringArray::from(out)))
}
