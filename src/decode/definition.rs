//! Parsing ROS1 `message_definition` text: the root message followed by `MSG: pkg/Type`
//! blocks for every type it depends on. Handles comments, blank lines, constants (any case,
//! spaces around `=`, string constants running to the end of the line), `byte`/`char` aliases,
//! `time`/`duration`, fixed and variable arrays, and bare `Header`.
//!
//! ROS 2 `.msg` text (MCAP `ros2msg` schemas) uses the same layout with a few differences, read
//! by [`Registry::parse_ros2`]: default values after the field name, bounded strings
//! (`string<=10`) and sequences (`int32[<=5]`), `pkg/msg/Type` names, `byte` as an unsigned octet,
//! and `builtin_interfaces/Time`/`Duration` standing for ROS1's `time`/`duration`.

use std::collections::HashMap;

use md5::{Digest, Md5};

/// A message definition that cannot be decoded with: which type, where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefinitionError {
    #[error("message definition of '{msg_type}': a dependency block starts with '{line}' instead of 'MSG: pkg/Type'")]
    BadBlockHeader { msg_type: String, line: String },

    /// A line of the block of `block` that is not a field or constant.
    #[error("message definition of '{msg_type}': in {block}: {reason}")]
    BadLine { msg_type: String, block: String, reason: String },

    #[error("message definition of '{msg_type}': field '{field}' has type '{written}', which is not defined in the bag's definition text")]
    UndefinedFieldType { msg_type: String, field: String, written: String, package: String },

    #[error("message definition of '{msg_type}': type {name} contains itself")]
    Recursive { msg_type: String, name: String },

    #[error("message definition of '{msg_type}': type {name} is not defined")]
    UndefinedType { msg_type: String, name: String },

    #[error("message definition of '{msg_type}': {what} are not decoded")]
    UnsupportedEncoding { msg_type: String, what: String },

    /// No definition of the type anywhere; `reason` names it and says what to do.
    #[error("{reason}")]
    MissingDefinition { reason: String },
}

/// Result of parsing definitions and compiling decoders.
pub type Result<T, E = DefinitionError> = std::result::Result<T, E>;

/// Built-in field types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Primitive {
    Bool,
    Int8,
    UInt8,
    Int16,
    UInt16,
    Int32,
    UInt32,
    Int64,
    UInt64,
    Float32,
    Float64,
    String,
    Time,
    Duration,
}

impl Primitive {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "bool" => Primitive::Bool,
            "int8" | "byte" => Primitive::Int8,
            "uint8" | "char" => Primitive::UInt8,
            "int16" => Primitive::Int16,
            "uint16" => Primitive::UInt16,
            "int32" => Primitive::Int32,
            "uint32" => Primitive::UInt32,
            "int64" => Primitive::Int64,
            "uint64" => Primitive::UInt64,
            "float32" => Primitive::Float32,
            "float64" => Primitive::Float64,
            "string" => Primitive::String,
            "time" => Primitive::Time,
            "duration" => Primitive::Duration,
            _ => return None,
        })
    }
}

/// How many values a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    Single,
    /// `T[]`: a u32 count precedes the elements.
    Variable,
    /// `T[n]`: exactly n elements, no count.
    Fixed(usize),
}

/// The element type of a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldType {
    Primitive(Primitive),
    /// A nested message, by its resolved full name (`pkg/Type`).
    Message(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    /// The type as written (`float64`, `Header`, `geometry_msgs/Point`), used for md5 sums.
    pub written_type: String,
    pub ty: FieldType,
    pub arity: Arity,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constant {
    pub written_type: String,
    pub name: String,
    pub value: String,
}

/// One message type: its fields in wire order and its constants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageDef {
    pub full_name: String,
    pub fields: Vec<Field>,
    pub constants: Vec<Constant>,
}

impl MessageDef {
    fn package(&self) -> &str {
        self.full_name.split('/').next().unwrap_or("")
    }
}

/// Which ROS generation's `.msg` syntax a definition is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Ros1,
    Ros2,
}

/// All message types found in one connection's definition text, nested names resolved.
#[derive(Debug, Clone)]
pub struct Registry {
    pub root: String,
    pub messages: HashMap<String, MessageDef>,
}

impl Registry {
    /// Parses the ROS1 definition text stored for `root_type` (for example `sensor_msgs/Imu`).
    pub fn parse(root_type: &str, text: &str) -> Result<Self> {
        Self::parse_dialect(root_type, text, Dialect::Ros1)
    }

    /// Parses a ROS 2 `.msg` definition (an MCAP `ros2msg` schema) for `root_type`
    /// (`sensor_msgs/msg/Imu`).
    pub fn parse_ros2(root_type: &str, text: &str) -> Result<Self> {
        Self::parse_dialect(root_type, text, Dialect::Ros2)
    }

    fn parse_dialect(root_type: &str, text: &str, dialect: Dialect) -> Result<Self> {
        let mut blocks: Vec<(String, Vec<&str>)> = vec![(root_type.to_string(), Vec::new())];
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.len() >= 3 && trimmed.bytes().all(|b| b == b'=') {
                blocks.push((String::new(), Vec::new()));
                continue;
            }
            // `blocks` starts with the root's block and only grows.
            let Some(current) = blocks.last_mut() else { continue };
            if current.0.is_empty() {
                if let Some(name) = trimmed.strip_prefix("MSG:") {
                    current.0 = name.trim().to_string();
                    continue;
                }
                if trimmed.is_empty() || trimmed.starts_with('#') {
                    continue;
                }
                return Err(DefinitionError::BadBlockHeader { msg_type: root_type.to_string(), line: trimmed.to_string() });
            }
            current.1.push(line);
        }
        let mut parsed = Vec::new();
        for (name, lines) in blocks {
            if name.is_empty() {
                continue; // trailing separator
            }
            let name = normalize_type_name(&name);
            let block = parse_block(&name, &lines, dialect)
                .map_err(|reason| DefinitionError::BadLine { msg_type: root_type.to_string(), block: name.clone(), reason })?;
            parsed.push(block);
        }
        let mut registry = Registry {
            root: normalize_type_name(root_type),
            messages: HashMap::new(),
        };
        let names: Vec<String> = parsed.iter().map(|m| m.full_name.clone()).collect();
        for mut msg in parsed {
            let package = msg.package().to_string();
            for field in &mut msg.fields {
                if let FieldType::Message(written) = &field.ty {
                    let resolved = resolve(written, &package, &names)
                        .ok_or_else(|| DefinitionError::UndefinedFieldType {
                            msg_type: root_type.to_string(),
                            field: field.name.clone(),
                            written: written.clone(),
                            package: package.clone(),
                        })?;
                    field.ty = FieldType::Message(resolved);
                }
            }
            registry.messages.entry(msg.full_name.clone()).or_insert(msg);
        }
        registry.check_no_cycles().map_err(|name| DefinitionError::Recursive { msg_type: root_type.to_string(), name })?;
        Ok(registry)
    }

    pub fn root(&self) -> &MessageDef {
        // The root block is always parsed first and always present.
        &self.messages[&self.root]
    }

    pub fn get(&self, name: &str) -> Option<&MessageDef> {
        self.messages.get(name)
    }

    fn check_no_cycles(&self) -> Result<(), String> {
        fn visit<'a>(reg: &'a Registry, name: &'a str, stack: &mut Vec<&'a str>) -> Result<(), String> {
            if stack.contains(&name) {
                return Err(name.to_string());
            }
            stack.push(name);
            if let Some(msg) = reg.messages.get(name) {
                for f in &msg.fields {
                    if let FieldType::Message(n) = &f.ty {
                        visit(reg, n, stack)?;
                    }
                }
            }
            stack.pop();
            Ok(())
        }
        visit(self, &self.root, &mut Vec::new())
    }

    /// The ROS md5sum of `name` as genmsg computes it (comments and whitespace do not count).
    pub fn md5sum(&self, name: &str) -> Option<String> {
        let msg = self.messages.get(name)?;
        let mut lines = Vec::new();
        for c in &msg.constants {
            lines.push(format!("{} {}={}", c.written_type, c.name, c.value));
        }
        for f in &msg.fields {
            match &f.ty {
                FieldType::Primitive(_) => {
                    let suffix = match f.arity {
                        Arity::Single => String::new(),
                        Arity::Variable => "[]".into(),
                        Arity::Fixed(n) => format!("[{n}]"),
                    };
                    lines.push(format!("{}{} {}", base_type(&f.written_type), suffix, f.name));
                }
                FieldType::Message(nested) => lines.push(format!("{} {}", self.md5sum(nested)?, f.name)),
            }
        }
        let digest = Md5::digest(lines.join("\n").as_bytes());
        Some(digest.iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// `pkg/msg/Type` (ROS 2 style) → `pkg/Type`.
fn normalize_type_name(name: &str) -> String {
    let name = name.trim();
    match name.split('/').collect::<Vec<_>>().as_slice() {
        [pkg, "msg", ty] => format!("{pkg}/{ty}"),
        _ => name.to_string(),
    }
}

fn resolve(written: &str, package: &str, known: &[String]) -> Option<String> {
    let written = normalize_type_name(written);
    if written == "Header" {
        return Some("std_msgs/Header".into()).filter(|n| known.contains(n)).or_else(|| by_short_name("Header", known));
    }
    if written.contains('/') {
        return known.contains(&written).then_some(written);
    }
    let same_package = format!("{package}/{written}");
    if known.contains(&same_package) {
        return Some(same_package);
    }
    by_short_name(&written, known)
}

fn by_short_name(short: &str, known: &[String]) -> Option<String> {
    known.iter().find(|n| n.rsplit('/').next() == Some(short)).cloned()
}

fn base_type(written: &str) -> &str {
    written.split('[').next().unwrap_or(written)
}

fn parse_block(full_name: &str, lines: &[&str], dialect: Dialect) -> Result<MessageDef, String> {
    let mut msg = MessageDef {
        full_name: full_name.to_string(),
        fields: Vec::new(),
        constants: Vec::new(),
    };
    for raw in lines {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (ty, rest) = match line.find(char::is_whitespace) {
            Some(i) => (&line[..i], line[i..].trim_start()),
            None => return Err(format!("line '{line}' has a type but no name")),
        };
        if is_constant(rest, dialect) {
            let eq = rest.find('=').unwrap_or(rest.len());
            msg.constants.push(parse_constant(ty, rest, eq)?);
            continue;
        }
        let without_comment = rest.split('#').next().unwrap_or("").trim();
        let name = match dialect {
            Dialect::Ros1 => without_comment,
            // ROS 2 allows a default value after the name.
            Dialect::Ros2 => without_comment.split_whitespace().next().unwrap_or(""),
        };
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(format!("cannot read a field name in '{line}'"));
        }
        msg.fields.push(parse_field(ty, name, dialect)?);
    }
    Ok(msg)
}

/// Whether the text after the type declares a constant (`NAME=value`, `NAME = value`). In ROS 2
/// a default value may itself hold '=' (`string s "a=b"`), so only the name part counts there.
fn is_constant(rest: &str, dialect: Dialect) -> bool {
    match dialect {
        Dialect::Ros1 => rest.contains('='),
        Dialect::Ros2 => {
            let name_end = rest.find(|c: char| c.is_whitespace() || c == '=').unwrap_or(rest.len());
            rest[name_end..].trim_start().starts_with('=')
        }
    }
}

fn parse_constant(ty: &str, rest: &str, eq: usize) -> Result<Constant, String> {
    let name = rest[..eq].trim();
    if name.is_empty() {
        return Err(format!("constant of type {ty} has no name"));
    }
    let after = &rest[eq + 1..];
    let value = if ty == "string" {
        after.trim().to_string()
    } else {
        after.split('#').next().unwrap_or("").trim().to_string()
    };
    Ok(Constant {
        written_type: ty.to_string(),
        name: name.to_string(),
        value,
    })
}

fn parse_field(ty: &str, name: &str, dialect: Dialect) -> Result<Field, String> {
    let (base, arity) = match ty.find('[') {
        None => (ty, Arity::Single),
        Some(open) => {
            let inner = ty[open + 1..]
                .strip_suffix(']')
                .ok_or_else(|| format!("bad array type '{ty}'"))?;
            let arity = if inner.is_empty() || (dialect == Dialect::Ros2 && inner.starts_with("<=")) {
                // ROS 2 bounded sequences are encoded like unbounded ones.
                Arity::Variable
            } else {
                let n: usize = inner
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad array length in '{ty}'"))?;
                // Arrow fixed-size lists hold at most i32::MAX values per row.
                if i32::try_from(n).is_err() {
                    return Err(format!("array length in '{ty}' is too large"));
                }
                Arity::Fixed(n)
            };
            (&ty[..open], arity)
        }
    };
    let field_type = match dialect {
        Dialect::Ros1 => Primitive::parse(base),
        Dialect::Ros2 => ros2_primitive(base)?,
    };
    let field_type = match field_type {
        Some(p) => FieldType::Primitive(p),
        None => FieldType::Message(base.to_string()),
    };
    Ok(Field {
        name: name.to_string(),
        written_type: ty.to_string(),
        ty: field_type,
        arity,
    })
}

/// ROS 2 built-in types: bounded strings read as strings, `byte`/`char` are unsigned octets,
/// and the builtin_interfaces time types map to ROS1's `time`/`duration`.
fn ros2_primitive(base: &str) -> Result<Option<Primitive>, String> {
    let base = base.split("<=").next().unwrap_or(base);
    Ok(match normalize_type_name(base).as_str() {
        "byte" | "char" => Some(Primitive::UInt8),
        "builtin_interfaces/Time" => Some(Primitive::Time),
        "builtin_interfaces/Duration" => Some(Primitive::Duration),
        "wstring" => return Err("wstring fields (UTF-16/32 text) are not decoded".into()),
        other => Primitive::parse(other).filter(|p| !matches!(p, Primitive::Time | Primitive::Duration)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMU: &str = "std_msgs/Header header\n\ngeometry_msgs/Quaternion orientation\nfloat64[9] orientation_covariance # Row major about x, y, z axes\n\ngeometry_msgs/Vector3 angular_velocity\nfloat64[9] angular_velocity_covariance\n\ngeometry_msgs/Vector3 linear_acceleration\nfloat64[9] linear_acceleration_covariance\n\n================================================================================\nMSG: std_msgs/Header\nuint32 seq\ntime stamp\nstring frame_id\n\n================================================================================\nMSG: geometry_msgs/Quaternion\n# a comment\nfloat64 x\nfloat64 y\nfloat64 z\nfloat64 w\n\n================================================================================\nMSG: geometry_msgs/Vector3\nfloat64 x\nfloat64 y\nfloat64 z\n";

    #[test]
    fn imu_definition_parses_and_hashes_like_ros() {
        let reg = Registry::parse("sensor_msgs/Imu", IMU).unwrap();
        let root = reg.root();
        assert_eq!(root.fields.len(), 7);
        assert_eq!(root.fields[2].arity, Arity::Fixed(9));
        assert_eq!(
            root.fields[1].ty,
            FieldType::Message("geometry_msgs/Quaternion".into())
        );
        assert_eq!(reg.md5sum("std_msgs/Header").unwrap(), "2176decaecbce78abc3b96ef049fabed");
        assert_eq!(reg.md5sum("sensor_msgs/Imu").unwrap(), "6a62c6daae103f4ff57a132d6f95cec2");
    }

    #[test]
    fn constants_any_case_with_spaces_and_string_to_end_of_line() {
        let text = "uint8 a=1\nuint8 B = 2 # two\nstring S = hello # not a comment\nint32 value\n";
        let reg = Registry::parse("x/C", text).unwrap();
        let m = reg.root();
        assert_eq!(m.fields.len(), 1);
        assert_eq!(m.constants.len(), 3);
        assert_eq!(m.constants[0].name, "a");
        assert_eq!(m.constants[1].value, "2");
        assert_eq!(m.constants[2].value, "hello # not a comment");
    }

    #[test]
    fn bare_header_and_same_package_resolution() {
        let text = "Header header\nBox[] boxes\n====\nMSG: std_msgs/Header\nuint32 seq\ntime stamp\nstring frame_id\n====\nMSG: det/Box\nfloat32 x\n====\nMSG: other/Box\nint8 y\n";
        let reg = Registry::parse("det/Boxes", text).unwrap();
        let m = reg.root();
        assert_eq!(m.fields[0].ty, FieldType::Message("std_msgs/Header".into()));
        assert_eq!(m.fields[1].ty, FieldType::Message("det/Box".into()));
        assert_eq!(m.fields[1].arity, Arity::Variable);
    }

    #[test]
    fn empty_definition_is_an_empty_message() {
        let reg = Registry::parse("std_msgs/Empty", "\n").unwrap();
        assert!(reg.root().fields.is_empty());
        assert_eq!(reg.md5sum("std_msgs/Empty").unwrap(), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn unknown_nested_type_is_an_error_naming_it() {
        let err = Registry::parse("a/B", "c/Missing m\n").unwrap_err().to_string();
        assert!(err.contains("c/Missing"), "{err}");
    }

    #[test]
    fn recursive_type_is_rejected() {
        let text = "a/Node child\n====\nMSG: a/Node\na/Node child\n";
        assert!(Registry::parse("a/Node", text).is_err());
    }
}
