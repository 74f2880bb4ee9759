//! The lake: where tables live (`<lake>/topics/<table>/bag_file=<bag>/part-*.parquet`), how topic
//! and bag names become table and partition names ([`layout`]), how part files are written
//! ([`parquet`]) and how they become Delta commits ([`delta`]), and how a table is read back
//! ([`table`]).

pub mod layout;
#[cfg(feature = "lake")]
pub mod error;
#[cfg(feature = "lake")]
pub mod delta;
#[cfg(feature = "lake")]
pub mod delta_log;
#[cfg(feature = "lake")]
pub mod delta_schema;
#[cfg(feature = "lake")]
mod delta_commit;
#[cfg(feature = "lake")]
mod delta_checkpoint;
#[cfg(feature = "lake")]
pub mod location;
#[cfg(feature = "lake")]
pub mod parquet;
#[cfg(feature = "lake")]
mod root;
#[cfg(feature = "lake")]
pub mod table;
#[cfg(feature = "lake")]
pub mod optimize;

pub mod vacuum;

pub use layout::{bag_key, bag_name, escape_partition_value, name_of_key, source_uri, table_name, PARTITION_COLUMN, RAW_MESSAGE_COLUMN};
#[cfg(feature = "lake")]
pub use error::LakeError;
#[cfg(feature = "lake")]
pub use root::{Lake, NamedTable, DERIVED_TABLES};
