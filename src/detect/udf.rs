//! The detect stage's DataFusion functions:
//! - `lane_assign(detections, lanes)`: the objects of a detections message that are in lane
//!   under either rule, with both rules' verdicts (`objects_in_lane`);
//! - `count_in_lane(objects_in_lane, rule)`: target-class objects in lane under `rule`.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

use super::{assign, output, DetectConfig};

fn external(e: impl std::error::Error + Send + Sync + 'static) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

#[derive(Debug)]
pub struct LaneAssign {
    config: DetectConfig,
    key: String,
    signature: Signature,
}

impl PartialEq for LaneAssign {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for LaneAssign {}
impl Hash for LaneAssign {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state)
    }
}

impl ScalarUDFImpl for LaneAssign {
    fn name(&self) -> &str {
        "lane_assign"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(output::objects_list_type())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [det, lanes] = arrays.as_slice() else {
            return Err(DataFusionError::Plan("lane_assign takes (detections, lanes)".into()));
        };
        let schema = Schema::new(vec![
            Field::new(&self.config.detections_table, det.data_type().clone(), true),
            Field::new(&self.config.lanes_table, lanes.data_type().clone(), true),
        ]);
        let batch = RecordBatch::try_new(Arc::new(schema), vec![det.clone(), lanes.clone()])?;
        let assigned = assign(&batch, &self.config).map_err(external)?;
        Ok(ColumnarValue::Array(Arc::new(output::objects_list(&assigned).map_err(external)?)))
    }
}

#[derive(Debug)]
pub struct CountInLane {
    target_class: String,
    signature: Signature,
}

impl PartialEq for CountInLane {
    fn eq(&self, other: &Self) -> bool {
        self.target_class == other.target_class
    }
}
impl Eq for CountInLane {}
impl Hash for CountInLane {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.target_class.hash(state)
    }
}

impl ScalarUDFImpl for CountInLane {
    fn name(&self) -> &str {
        "count_in_lane"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::UInt32)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [objects, rule] = arrays.as_slice() else {
            return Err(DataFusionError::Plan("count_in_lane takes (objects_in_lane, rule)".into()));
        };
        let rule = arrow::compute::cast(rule, &DataType::Utf8)?;
        let rule = rule.as_string::<i32>();
        let list = objects
            .as_list_opt::<i32>()
            .ok_or_else(|| DataFusionError::Plan("count_in_lane: first argument is not objects_in_lane".into()))?;
        let items = list.values().as_struct();
        let column = |name: &str| {
            items
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| DataFusionError::Plan(format!("count_in_lane: objects have no field {name}")))
        };
        let class = column("class")?;
        let class = class.as_string::<i32>();
        let ego = column("in_ego_lane")?;
        let ego = ego.as_boolean();
        let reference = column("in_lane_reference")?;
        let reference = reference.as_boolean();
        let mut out = Vec::with_capacity(list.len());
        for row in 0..list.len() {
            if list.is_null(row) || rule.is_null(row) {
                out.push(None);
                continue;
            }
            let flags = match rule.value(row) {
                "ego_footprint" => ego,
                "reference" => reference,
                other => return Err(DataFusionError::Plan(format!("count_in_lane: unknown rule '{other}'"))),
            };
            let (a, b) = (list.value_offsets()[row] as usize, list.value_offsets()[row + 1] as usize);
            let n = (a..b).filter(|&i| class.value(i) == self.target_class && flags.value(i)).count();
            out.push(Some(n as u32));
        }
        Ok(ColumnarValue::Array(Arc::new(UInt32Array::from(out))))
    }
}

/// The detect functions for `config`.
pub fn functions(config: &DetectConfig) -> Vec<ScalarUDF> {
    let key = serde_json::to_string(config).unwrap_or_default();
    vec![
        ScalarUDF::from(LaneAssign {
            config: config.clone(),
            key,
            signature: Signature::any(2, Volatility::Immutable),
        }),
        ScalarUDF::from(CountInLane {
            target_class: config.target_class.clone(),
            signature: Signature::any(2, Volatility::Immutable),
        }),
    ]
}
