//! Message decoding: definition text → type registry → decode plan → Arrow arrays.

pub mod column;
pub mod cursor;
pub mod definition;
pub mod idl;
pub mod msg_path;
pub mod plan;
pub mod views;

pub use cursor::DecodeError;
pub use definition::{DefinitionError, Registry};
pub use plan::{Decoded, MessageColumns};
