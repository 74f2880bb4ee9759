//! Trino (Athena) function names in `scenes query`, with Trino's semantics, so SQL written for
//! Athena runs here. This module: `date_diff`, `date_add`, `to_unixtime` (a double),
//! `to_iso8601`, `format_datetime` (Joda patterns), `date_format` (MySQL patterns),
//! `element_at` (1-based on arrays, negative from the end, also on maps) and `contains` (on
//! arrays, and on strings as before); [`scalars`] the date/time fields, `split`, `slice`,
//! `regexp_extract` and the JSON functions of [`json`]; [`aggregates`] `count_if`,
//! `approx_percentile`, `max_by` and `min_by`; `arbitrary` is DataFusion's `first_value`. Each
//! is tested against the examples of Trino's documentation (tests/suite/query.rs,
//! `trino_functions_*`).

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, StringArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Field, FieldRef, Int64Type, TimeUnit, TimestampNanosecondType};
use chrono::{DateTime, Datelike, Months, TimeZone, Utc};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{AggregateUDF, ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;

mod aggregates;
mod json;
mod scalars;

/// Registers the Trino functions in `ctx` (replacing DataFusion's of the same name).
pub fn register(ctx: &SessionContext) -> Result<()> {
    for f in [
        Function::DateDiff,
        Function::DateAdd,
        Function::ToUnixtime,
        Function::ToIso8601,
        Function::FormatDatetime,
        Function::DateFormat,
        Function::JsonExtractScalar,
        Function::ElementAt,
        Function::Contains,
    ] {
        ctx.register_udf(ScalarUDF::new_from_impl(Trino::new(f)));
    }
    for f in scalars::functions() {
        ctx.register_udf(f);
    }
    ctx.register_udaf(AggregateUDF::new_from_impl(aggregates::CountIf::default()));
    ctx.register_udaf(AggregateUDF::new_from_impl(aggregates::ApproxPercentile::default()));
    ctx.register_udaf(AggregateUDF::new_from_impl(aggregates::ValueBy::max_by()));
    ctx.register_udaf(AggregateUDF::new_from_impl(aggregates::ValueBy::min_by()));
    for (existing, alias) in [("first_value", "arbitrary")] {
        if let Some(udaf) = ctx.state().aggregate_functions().get(existing) {
            ctx.register_udaf(udaf.as_ref().clone().with_aliases([alias]));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Function {
    DateDiff,
    DateAdd,
    ToUnixtime,
    ToIso8601,
    FormatDatetime,
    DateFormat,
    JsonExtractScalar,
    ElementAt,
    Contains,
}

impl Function {
    fn name(self) -> &'static str {
        match self {
            Function::DateDiff => "date_diff",
            Function::DateAdd => "date_add",
            Function::ToUnixtime => "to_unixtime",
            Function::ToIso8601 => "to_iso8601",
            Function::FormatDatetime => "format_datetime",
            Function::DateFormat => "date_format",
            Function::JsonExtractScalar => "json_extract_scalar",
            Function::ElementAt => "element_at",
            Function::Contains => "contains",
        }
    }
}

#[derive(Debug)]
struct Trino {
    function: Function,
    signature: Signature,
}

impl Trino {
    fn new(function: Function) -> Self {
        Trino { function, signature: Signature::variadic_any(Volatility::Immutable) }
    }
}

impl PartialEq for Trino {
    fn eq(&self, other: &Self) -> bool {
        self.function == other.function
    }
}
impl Eq for Trino {}
impl Hash for Trino {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.function.hash(state)
    }
}

fn plan_error(message: impl Into<String>) -> DataFusionError {
    DataFusionError::Plan(message.into())
}

fn exec_error(message: impl Into<String>) -> DataFusionError {
    DataFusionError::Execution(message.into())
}

impl ScalarUDFImpl for Trino {
    fn name(&self) -> &str {
        self.function.name()
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        let arity = |n: usize, usage: &str| if args.len() == n { Ok(()) } else { Err(plan_error(format!("{}: use {usage}", self.name()))) };
        Ok(match self.function {
            Function::DateDiff => {
                arity(3, "date_diff(unit, timestamp1, timestamp2)")?;
                DataType::Int64
            }
            Function::DateAdd => {
                arity(3, "date_add(unit, value, timestamp)")?;
                match &args[2] {
                    DataType::Timestamp(_, tz) => DataType::Timestamp(TimeUnit::Nanosecond, tz.clone()),
                    DataType::Date32 | DataType::Date64 => DataType::Timestamp(TimeUnit::Nanosecond, None),
                    other => return Err(plan_error(format!("date_add: a timestamp is needed, not {other}"))),
                }
            }
            Function::ToUnixtime => {
                arity(1, "to_unixtime(timestamp)")?;
                DataType::Float64
            }
            Function::ToIso8601 => {
                arity(1, "to_iso8601(timestamp)")?;
                DataType::Utf8
            }
            Function::FormatDatetime => {
                arity(2, "format_datetime(timestamp, format)")?;
                DataType::Utf8
            }
            Function::DateFormat => {
                arity(2, "date_format(timestamp, '%Y-%m-%d %H:%i:%s')")?;
                DataType::Utf8
            }
            Function::JsonExtractScalar => {
                arity(2, "json_extract_scalar(json, json_path)")?;
                DataType::Utf8
            }
            Function::ElementAt => {
                arity(2, "element_at(array, index) or element_at(map, key)")?;
                match &args[0] {
                    DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => f.data_type().clone(),
                    DataType::Map(entries, _) => match entries.data_type() {
                        DataType::Struct(fields) if fields.len() == 2 => fields[1].data_type().clone(),
                        other => return Err(plan_error(format!("element_at: unexpected map entries {other}"))),
                    },
                    other => return Err(plan_error(format!("element_at: an array or a map is needed, not {other}"))),
                }
            }
            Function::Contains => {
                arity(2, "contains(array, element) or contains(string, substring)")?;
                DataType::Boolean
            }
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays: Vec<ArrayRef> = args.args.iter().map(|a| a.to_array(rows)).collect::<Result<_>>()?;
        let out: ArrayRef = match self.function {
            Function::DateDiff => date_diff(&arrays)?,
            Function::DateAdd => date_add(&arrays, &args.return_field)?,
            Function::ToUnixtime => {
                let t = nanos(&arrays[0])?;
                Arc::new(t.iter().map(|v| v.map(|ns| ns as f64 / 1e9)).collect::<Float64Array>())
            }
            Function::ToIso8601 => {
                let zoned = matches!(arrays[0].data_type(), DataType::Timestamp(_, Some(_)));
                let t = nanos(&arrays[0])?;
                Arc::new(t.iter().map(|v| v.map(|ns| iso8601(ns, zoned))).collect::<StringArray>())
            }
            Function::FormatDatetime => format_with(&arrays, joda_to_strftime)?,
            Function::DateFormat => format_with(&arrays, mysql_to_strftime)?,
            Function::JsonExtractScalar => json::json_extract_scalar(&arrays)?,
            Function::ElementAt => element_at(&arrays)?,
            Function::Contains => contains(&arrays)?,
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// Timestamps (any unit, or dates) as nanoseconds since the epoch.
fn nanos(array: &ArrayRef) -> Result<TimestampNanosecondArray> {
    let cast = arrow::compute::cast(array, &DataType::Timestamp(TimeUnit::Nanosecond, None))?;
    Ok(cast.as_primitive::<TimestampNanosecondType>().clone())
}

fn text(array: &ArrayRef) -> Result<StringArray> {
    Ok(arrow::compute::cast(array, &DataType::Utf8)?.as_string::<i32>().clone())
}

/// Nanoseconds of the fixed-length units; `None` for calendar units.
fn unit_nanos(unit: &str) -> Result<Option<i64>> {
    Ok(match unit.to_ascii_lowercase().as_str() {
        "millisecond" => Some(1_000_000),
        "second" => Some(1_000_000_000),
        "minute" => Some(60_000_000_000),
        "hour" => Some(3_600_000_000_000),
        "day" => Some(86_400_000_000_000),
        "week" => Some(7 * 86_400_000_000_000),
        "month" | "quarter" | "year" => None,
        other => return Err(exec_error(format!("'{other}' is not a unit: use millisecond, second, minute, hour, day, week, month, quarter or year"))),
    })
}

fn months_of(unit: &str) -> i32 {
    match unit.to_ascii_lowercase().as_str() {
        "quarter" => 3,
        "year" => 12,
        _ => 1,
    }
}

fn datetime(ns: i64) -> DateTime<Utc> {
    Utc.timestamp_nanos(ns)
}

/// `date_diff(unit, a, b)`: whole units from `a` to `b` (calendar months for month, quarter and
/// year), truncated toward zero, as Trino counts them.
fn date_diff(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let (units, a, b) = (text(&arrays[0])?, nanos(&arrays[1])?, nanos(&arrays[2])?);
    let mut out = Vec::with_capacity(a.len());
    for i in 0..a.len() {
        if units.is_null(i) || a.is_null(i) || b.is_null(i) {
            out.push(None);
            continue;
        }
        let (x, y) = (a.value(i), b.value(i));
        out.push(Some(match unit_nanos(units.value(i))? {
            // Integer division truncates toward zero, as Trino's counts do.
            Some(unit) => ((y as i128 - x as i128) / unit as i128) as i64,
            None => months_between(datetime(x), datetime(y)) / i64::from(months_of(units.value(i))),
        }));
    }
    Ok(Arc::new(Int64Array::from(out)))
}

/// Whole calendar months from `a` to `b`, truncated toward zero.
fn months_between(a: DateTime<Utc>, b: DateTime<Utc>) -> i64 {
    let (early, late, sign) = if a <= b { (a, b, 1) } else { (b, a, -1) };
    let mut months = i64::from(late.year() - early.year()) * 12 + i64::from(late.month()) - i64::from(early.month());
    if months > 0 && early.checked_add_months(Months::new(months as u32)).is_some_and(|m| m > late) {
        months -= 1;
    }
    sign * months
}

/// `date_add(unit, value, t)`.
fn date_add(arrays: &[ArrayRef], return_field: &FieldRef) -> Result<ArrayRef> {
    let units = text(&arrays[0])?;
    let values = arrow::compute::cast(&arrays[1], &DataType::Int64)?;
    let values = values.as_primitive::<Int64Type>();
    let t = nanos(&arrays[2])?;
    let mut out = Vec::with_capacity(t.len());
    for i in 0..t.len() {
        if units.is_null(i) || values.is_null(i) || t.is_null(i) {
            out.push(None);
            continue;
        }
        let (n, ns) = (values.value(i), t.value(i));
        let added = match unit_nanos(units.value(i))? {
            Some(unit) => n.checked_mul(unit).and_then(|d| ns.checked_add(d)),
            None => {
                let months = n.checked_mul(i64::from(months_of(units.value(i)))).and_then(|m| i32::try_from(m).ok());
                months.and_then(|m| {
                    let at = datetime(ns);
                    let moved = if m >= 0 { at.checked_add_months(Months::new(m as u32)) } else { at.checked_sub_months(Months::new(m.unsigned_abs())) };
                    moved.and_then(|d| d.timestamp_nanos_opt())
                })
            }
        };
        out.push(Some(added.ok_or_else(|| exec_error("date_add: the result is out of the timestamp range"))?));
    }
    let tz = match return_field.data_type() {
        DataType::Timestamp(_, tz) => tz.clone(),
        _ => None,
    };
    Ok(Arc::new(TimestampNanosecondArray::from(out).with_timezone_opt(tz)))
}

/// ISO 8601 with milliseconds, `Z` for a zoned (UTC) timestamp.
fn iso8601(ns: i64, zoned: bool) -> String {
    let text = datetime(ns).format("%Y-%m-%dT%H:%M:%S%.3f").to_string();
    if zoned {
        text + "Z"
    } else {
        text
    }
}

/// `format_datetime(t, joda_pattern)`.
/// `format_datetime` (Joda patterns) and `date_format` (MySQL patterns): each time formatted
/// by its pattern, translated to chrono's by `to_strftime`.
fn format_with(arrays: &[ArrayRef], to_strftime: fn(&str) -> Result<String>) -> Result<ArrayRef> {
    let (t, patterns) = (nanos(&arrays[0])?, text(&arrays[1])?);
    let mut out = Vec::with_capacity(t.len());
    for i in 0..t.len() {
        if t.is_null(i) || patterns.is_null(i) {
            out.push(None);
            continue;
        }
        let strftime = to_strftime(patterns.value(i))?;
        out.push(Some(datetime(t.value(i)).format(&strftime).to_string()));
    }
    Ok(Arc::new(StringArray::from(out)))
}

/// A MySQL pattern (what Trino's `date_format` takes: `%Y-%m-%d %H:%i:%s`) as a chrono
/// format string.
fn mysql_to_strftime(pattern: &str) -> Result<String> {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(spec) = chars.next() else {
            return Err(exec_error(format!("date_format: '{pattern}' ends with a lone %")));
        };
        out.push_str(match spec {
            'Y' => "%Y",
            'y' => "%y",
            'm' => "%m",
            'c' => "%-m",
            'd' => "%d",
            'e' => "%-d",
            'H' => "%H",
            'k' => "%-H",
            'h' | 'I' => "%I",
            'l' => "%-I",
            'i' => "%M",
            's' | 'S' => "%S",
            'f' => "%6f",
            'p' => "%p",
            'a' => "%a",
            'W' => "%A",
            'b' => "%b",
            'M' => "%B",
            'j' => "%j",
            'T' => "%H:%M:%S",
            'r' => "%I:%M:%S %p",
            '%' => "%%",
            other => return Err(exec_error(format!("date_format: %{other} in '{pattern}' is not supported"))),
        });
    }
    Ok(out)
}

/// A Joda-Time pattern (what Trino's `format_datetime` takes) as a chrono format string.
fn joda_to_strftime(pattern: &str) -> Result<String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // Quoted literal text; '' is a quote.
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '\'' {
                out.push(chars[j]);
                j += 1;
            }
            if j == i + 1 {
                out.push('\'');
            }
            i = j + 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        let spec = match (c, run) {
            ('y' | 'Y', 2) => "%y",
            ('y' | 'Y', _) => "%Y",
            ('M', 1) => "%-m",
            ('M', 2) => "%m",
            ('M', 3) => "%b",
            ('M', _) => "%B",
            ('d', 1) => "%-d",
            ('d', _) => "%d",
            ('D', _) => "%j",
            ('H', 1) => "%-H",
            ('H', _) => "%H",
            ('h', 1) => "%-I",
            ('h', _) => "%I",
            ('m', 1) => "%-M",
            ('m', _) => "%M",
            ('s', 1) => "%-S",
            ('s', _) => "%S",
            ('S', 1..=3) => "%3f",
            ('S', 4..=6) => "%6f",
            ('S', _) => "%9f",
            ('a', _) => "%p",
            ('E', 1..=3) => "%a",
            ('E', _) => "%A",
            ('Z', 1) => "%z",
            ('Z', 2) => "%:z",
            ('z', _) => "UTC",
            (letter, _) if letter.is_ascii_alphabetic() => return Err(exec_error(format!("format_datetime: pattern letter '{letter}' is not supported"))),
            _ => {
                for _ in 0..run {
                    if c == '%' {
                        out.push_str("%%");
                    } else {
                        out.push(c);
                    }
                }
                i += run;
                continue;
            }
        };
        // %3f and friends print the fraction without its dot.
        out.push_str(spec);
        i += run;
    }
    Ok(out)
}

/// `element_at(array, index)`: 1-based, negative counts from the end, NULL past either end;
/// `element_at(map, key)`: the key's value or NULL.
fn element_at(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let container = &arrays[0];
    let mut picks: Vec<Option<usize>> = Vec::with_capacity(container.len());
    let values: ArrayRef = match container.data_type() {
        DataType::Map(_, _) => {
            let map = container.as_map();
            let keys = text(map.keys())?;
            let wanted = text(&arrays[1])?;
            let offsets = map.value_offsets();
            for i in 0..map.len() {
                let found = (!map.is_null(i) && !wanted.is_null(i))
                    .then(|| (offsets[i] as usize..offsets[i + 1] as usize).find(|&k| keys.is_valid(k) && keys.value(k) == wanted.value(i)))
                    .flatten();
                picks.push(found);
            }
            map.values().clone()
        }
        _ => {
            let list = arrow::compute::cast(container, &DataType::List(Arc::new(Field::new("item", list_item_type(container)?, true))))?;
            let list = list.as_list::<i32>().clone();
            let index = arrow::compute::cast(&arrays[1], &DataType::Int64)?;
            let index = index.as_primitive::<Int64Type>();
            let offsets = list.value_offsets();
            for i in 0..list.len() {
                if list.is_null(i) || index.is_null(i) {
                    picks.push(None);
                    continue;
                }
                let (start, len) = (offsets[i] as i64, (offsets[i + 1] - offsets[i]) as i64);
                let n = index.value(i);
                if n == 0 {
                    return Err(exec_error("element_at: SQL array indices start at 1"));
                }
                let at = if n > 0 { n - 1 } else { len + n };
                picks.push((0..len).contains(&at).then(|| (start + at) as usize));
            }
            list.values().clone()
        }
    };
    let indices = arrow::array::UInt64Array::from(picks.into_iter().map(|p| p.map(|p| p as u64)).collect::<Vec<_>>());
    Ok(arrow::compute::take(values.as_ref(), &indices, None)?)
}

fn list_item_type(array: &ArrayRef) -> Result<DataType> {
    match array.data_type() {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => Ok(f.data_type().clone()),
        other => Err(exec_error(format!("element_at: an array or a map is needed, not {other}"))),
    }
}

/// `contains(array, element)`; on strings, whether the first contains the second.
fn contains(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let haystack = &arrays[0];
    if matches!(haystack.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
        let (a, b) = (text(haystack)?, text(&arrays[1])?);
        return Ok(Arc::new((0..a.len()).map(|i| (a.is_valid(i) && b.is_valid(i)).then(|| a.value(i).contains(b.value(i)))).collect::<BooleanArray>()));
    }
    let item = list_item_type(haystack)?;
    let list = arrow::compute::cast(haystack, &DataType::List(Arc::new(Field::new("item", item.clone(), true))))?;
    let list = list.as_list::<i32>();
    let needle = arrow::compute::cast(&arrays[1], &item)?;
    let mut out = Vec::with_capacity(list.len());
    for i in 0..list.len() {
        if list.is_null(i) || needle.is_null(i) {
            out.push(None);
            continue;
        }
        let values = list.value(i);
        let wanted = ScalarValue::try_from_array(&needle, i)?;
        let mut found = false;
        for k in 0..values.len() {
            if ScalarValue::try_from_array(&values, k)? == wanted {
                found = true;
                break;
            }
        }
        out.push(Some(found));
    }
    Ok(Arc::new(BooleanArray::from(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joda_patterns_become_strftime() {
        assert_eq!(joda_to_strftime("yyyy-MM-dd HH:mm:ss").unwrap(), "%Y-%m-%d %H:%M:%S");
        assert_eq!(joda_to_strftime("EEE, d MMM yyyy 'at' h:mm a").unwrap(), "%a, %-d %b %Y at %-I:%M %p");
        assert!(joda_to_strftime("G").is_err());
    }

    #[test]
    fn calendar_months_are_whole_months() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        // Month ends clamp, as Joda (Trino) counts: January 31 + 1 month is February 29.
        assert_eq!(months_between(at("2020-01-31T00:00:00Z"), at("2020-02-29T00:00:00Z")), 1);
        assert_eq!(months_between(at("2020-01-31T00:00:00Z"), at("2020-02-28T00:00:00Z")), 0);
        assert_eq!(months_between(at("2020-01-15T00:00:00Z"), at("2020-03-15T00:00:00Z")), 2);
        assert_eq!(months_between(at("2021-03-15T00:00:00Z"), at("2020-03-15T00:00:00Z")), -12);
    }
}
