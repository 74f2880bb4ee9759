//! Column types for catalogs, from a table's Delta schema (its `schemaString` JSON): Hive type
//! text for Glue table columns, and Trino type text for the columns of Athena (Presto) views.

use serde_json::Value;

use crate::error::{Error, Result};

/// A column: its name and Delta type (as the Delta log writes it).
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub delta_type: Value,
}

/// The top-level columns of a Delta schema.
pub fn columns(schema: &Value) -> Result<Vec<Column>> {
    let fields = schema.get("fields").and_then(Value::as_array).ok_or_else(|| unknown(schema))?;
    fields
        .iter()
        .map(|f| {
            let name = f.get("name").and_then(Value::as_str).ok_or_else(|| unknown(f))?;
            let delta_type = f.get("type").cloned().ok_or_else(|| unknown(f))?;
            Ok(Column { name: name.to_string(), delta_type })
        })
        .collect()
}

/// Hive type text (Glue `Column.Type`): `bigint`, `array<struct<x:double>>`, ...
pub fn hive_type(t: &Value) -> Result<String> {
    type_text(t, &Syntax::HIVE)
}

/// Trino type text (Athena view columns): `bigint`, `array(row("x" double))`, ...
pub fn trino_type(t: &Value) -> Result<String> {
    type_text(t, &Syntax::TRINO)
}

/// How one catalog spells types.
struct Syntax {
    primitive: fn(&str) -> Option<String>,
    array: fn(String) -> String,
    map: fn(String, String) -> String,
    field: fn(&str, String) -> String,
    row: fn(Vec<String>) -> String,
}

impl Syntax {
    const HIVE: Syntax = Syntax {
        primitive: hive_primitive,
        array: |e| format!("array<{e}>"),
        map: |k, v| format!("map<{k},{v}>"),
        field: |name, t| format!("{name}:{t}"),
        row: |fields| format!("struct<{}>", fields.join(",")),
    };
    const TRINO: Syntax = Syntax {
        primitive: trino_primitive,
        array: |e| format!("array({e})"),
        map: |k, v| format!("map({k}, {v})"),
        field: |name, t| format!("\"{}\" {t}", name.replace('"', "\"\"")),
        row: |fields| format!("row({})", fields.join(", ")),
    };
}

fn type_text(t: &Value, syntax: &Syntax) -> Result<String> {
    match t {
        Value::String(name) => (syntax.primitive)(name).ok_or_else(|| unknown(t)),
        Value::Object(o) => match o.get("type").and_then(Value::as_str) {
            Some("array") => Ok((syntax.array)(type_text(o.get("elementType").ok_or_else(|| unknown(t))?, syntax)?)),
            Some("map") => Ok((syntax.map)(
                type_text(o.get("keyType").ok_or_else(|| unknown(t))?, syntax)?,
                type_text(o.get("valueType").ok_or_else(|| unknown(t))?, syntax)?,
            )),
            Some("struct") => {
                let fields = columns(t)?
                    .into_iter()
                    .map(|c| Ok((syntax.field)(&c.name, type_text(&c.delta_type, syntax)?)))
                    .collect::<Result<Vec<_>>>()?;
                Ok((syntax.row)(fields))
            }
            _ => Err(unknown(t)),
        },
        _ => Err(unknown(t)),
    }
}

fn hive_primitive(name: &str) -> Option<String> {
    Some(match name {
        "string" => "string".into(),
        "long" => "bigint".into(),
        "integer" => "int".into(),
        "short" => "smallint".into(),
        "byte" => "tinyint".into(),
        "float" => "float".into(),
        "double" => "double".into(),
        "boolean" => "boolean".into(),
        "binary" => "binary".into(),
        "date" => "date".into(),
        "timestamp" | "timestamp_ntz" => "timestamp".into(),
        decimal if decimal.starts_with("decimal(") => decimal.replace(' ', ""),
        _ => return None,
    })
}

/// Trino's names for Delta types, as Trino's Delta Lake connector (Athena) maps them.
fn trino_primitive(name: &str) -> Option<String> {
    Some(match name {
        "string" => "varchar".into(),
        "long" => "bigint".into(),
        "integer" => "integer".into(),
        "short" => "smallint".into(),
        "byte" => "tinyint".into(),
        "float" => "real".into(),
        "double" => "double".into(),
        "boolean" => "boolean".into(),
        "binary" => "varbinary".into(),
        "date" => "date".into(),
        "timestamp" => "timestamp(3) with time zone".into(),
        "timestamp_ntz" => "timestamp(6)".into(),
        decimal if decimal.starts_with("decimal(") => decimal.replace(' ', ""),
        _ => return None,
    })
}

fn unknown(t: &Value) -> Error {
    Error::invalid(format!("Delta type {t}"), "has no catalog type (a Delta log this version of scenes does not know)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn delta_types_become_hive_and_trino_types() {
        let header = json!({"type": "struct", "fields": [
            {"name": "stamp", "type": "timestamp", "nullable": true, "metadata": {}},
            {"name": "stamp_ns", "type": "long", "nullable": true, "metadata": {}},
            {"name": "frame_id", "type": "string", "nullable": true, "metadata": {}}
        ]});
        let points = json!({"type": "array", "elementType": {"type": "struct", "fields": [
            {"name": "x", "type": "float", "nullable": true, "metadata": {}}
        ]}, "containsNull": true});
        assert_eq!(hive_type(&header).unwrap(), "struct<stamp:timestamp,stamp_ns:bigint,frame_id:string>");
        assert_eq!(trino_type(&header).unwrap(), "row(\"stamp\" timestamp(3) with time zone, \"stamp_ns\" bigint, \"frame_id\" varchar)");
        assert_eq!(hive_type(&points).unwrap(), "array<struct<x:float>>");
        assert_eq!(trino_type(&points).unwrap(), "array(row(\"x\" real))");
        assert_eq!(hive_type(&json!("decimal(20,0)")).unwrap(), "decimal(20,0)");
        assert_eq!(trino_type(&json!("binary")).unwrap(), "varbinary");
        assert!(hive_type(&json!("variant")).is_err());
    }
}
