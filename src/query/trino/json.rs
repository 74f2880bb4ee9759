//! Trino's JSON functions over JSON text: `json_extract_scalar`, `json_extract` and
//! `json_array_length`, with Trino's JSONPath subset (`$`, `.key`, `["key"]`, `[index]`).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, StringArray};
use datafusion::error::Result;

use super::{exec_error, text};

/// `json_extract_scalar(json, path)`: the scalar (string, number, boolean) at a JSONPath
/// (`$`, `.key`, `["key"]`, `[index]`), as text; NULL for objects, arrays, null and missing.
pub(super) fn json_extract_scalar(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let scalars = values_at(arrays)?.into_iter().map(|found| match found {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        Some(serde_json::Value::Bool(b)) => Some(b.to_string()),
        _ => None,
    });
    Ok(Arc::new(StringArray::from_iter(scalars)))
}

enum Step {
    Key(String),
    Index(usize),
}

fn json_path(path: &str) -> Result<Vec<Step>> {
    let bad = || exec_error(format!("'{path}' is not a JSON path of the form $.key[0][\"other key\"]"));
    let rest = path.trim().strip_prefix('$').ok_or_else(bad)?;
    let chars: Vec<char> = rest.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && chars[j] != '.' && chars[j] != '[' {
                    j += 1;
                }
                if j == start {
                    return Err(bad());
                }
                steps.push(Step::Key(chars[start..j].iter().collect()));
                i = j;
            }
            '[' => {
                let close = chars[i..].iter().position(|&c| c == ']').ok_or_else(bad)? + i;
                let inside: String = chars[i + 1..close].iter().collect();
                let inside = inside.trim();
                if let Some(quoted) = inside.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                    steps.push(Step::Key(quoted.to_string()));
                } else {
                    steps.push(Step::Index(inside.parse().map_err(|_| bad())?));
                }
                i = close + 1;
            }
            _ => return Err(bad()),
        }
    }
    Ok(steps)
}


/// The value at `path` in each document (`None` for a NULL, unparsable document or a path that
/// leads nowhere).
fn values_at(arrays: &[ArrayRef]) -> Result<Vec<Option<serde_json::Value>>> {
    let (docs, paths) = (text(&arrays[0])?, text(&arrays[1])?);
    let mut out = Vec::with_capacity(docs.len());
    for i in 0..docs.len() {
        if docs.is_null(i) || paths.is_null(i) {
            out.push(None);
            continue;
        }
        let steps = json_path(paths.value(i))?;
        let value: Option<serde_json::Value> = serde_json::from_str(docs.value(i)).ok();
        out.push(value.and_then(|v| {
            steps.iter().try_fold(v, |v, step| match step {
                Step::Key(k) => v.get(k.as_str()).cloned(),
                Step::Index(n) => v.get(*n).cloned(),
            })
        }));
    }
    Ok(out)
}

/// `json_extract(json, path)`: the JSON text of the value at a JSONPath (objects and arrays
/// too); NULL when missing.
pub(super) fn json_extract(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let values = values_at(arrays)?;
    Ok(Arc::new(StringArray::from_iter(values.into_iter().map(|v| v.map(|v| v.to_string())))))
}

/// `json_array_length(json)`: the length of a JSON array; NULL for anything else.
pub(super) fn json_array_length(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let docs = text(&arrays[0])?;
    let lengths = (0..docs.len()).map(|i| {
        if docs.is_null(i) {
            return None;
        }
        match serde_json::from_str::<serde_json::Value>(docs.value(i)) {
            Ok(serde_json::Value::Array(items)) => Some(items.len() as i64),
            _ => None,
        }
    });
    Ok(Arc::new(Int64Array::from_iter(lengths)))
}
