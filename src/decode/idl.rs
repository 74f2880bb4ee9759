//! ROS 2 IDL definitions (MCAP `ros2idl` schemas, `.db3` definitions encoded `ros2idl`) turned
//! into `.msg` text, for the `.msg` parser: the subset of OMG IDL that rosidl generates from
//! `.msg` files — nested `module`s, `struct`s, `typedef`s of arrays, `const`s in
//! `<Type>_Constants` modules, annotations (skipped), `sequence<T>` and `sequence<T, N>`,
//! bounded strings, fixed arrays, and IDL's names for the primitive types.
//!
//! A schema holds one IDL block per type, each after a line of `=` and `IDL: pkg/msg/Type`; the
//! blocks are read as one text. The root type's struct comes first in the result, then a
//! `MSG: pkg/msg/Type` block per other struct.

use std::collections::HashMap;

/// The `.msg` text (root first, then `MSG:` blocks) of the IDL schema `text` of `root_type`.
pub fn idl_to_msg(root_type: &str, text: &str) -> Result<String, String> {
    let tokens = tokenize(&strip_block_headers(text))?;
    let mut parser = Parser { tokens, pos: 0, modules: Vec::new(), typedefs: HashMap::new(), structs: Vec::new(), constants: HashMap::new() };
    parser.definitions(false)?;
    let root = full_name(root_type);
    let Some(root_index) = parser.structs.iter().position(|s| s.name == root) else {
        return Err(format!("the IDL defines no struct {root}"));
    };
    let mut order: Vec<usize> = vec![root_index];
    order.extend((0..parser.structs.len()).filter(|&i| i != root_index));
    let mut out = String::new();
    for (n, &i) in order.iter().enumerate() {
        let s = &parser.structs[i];
        if n > 0 {
            out.push_str(&format!("================================================================================\nMSG: {}\n", s.name));
        }
        for constant in parser.constants.get(&s.name).into_iter().flatten() {
            out.push_str(constant);
            out.push('\n');
        }
        for member in &s.members {
            out.push_str(member);
            out.push('\n');
        }
    }
    Ok(out)
}

/// `pkg/Type` → `pkg/msg/Type`; `pkg/msg/Type` unchanged.
fn full_name(name: &str) -> String {
    match name.split('/').collect::<Vec<_>>().as_slice() {
        [pkg, ty] => format!("{pkg}/msg/{ty}"),
        _ => name.to_string(),
    }
}

/// The text without the `====` separator lines and `IDL: name` headers between blocks.
fn strip_block_headers(text: &str) -> String {
    text.lines()
        .filter(|line| {
            let t = line.trim();
            !(t.len() >= 3 && t.bytes().all(|b| b == b'=')) && !t.starts_with("IDL:")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Number(String),
    Text(String),
    Punct(char),
}

/// Words (with `::`), numbers, string literals and punctuation; comments and preprocessor
/// lines dropped.
fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && chars.get(i + 1) == Some(&'/') || c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == '"' || c == '\'' {
            let quote = c;
            let mut value = String::new();
            i += 1;
            while i < chars.len() && chars[i] != quote {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                    value.push(match chars[i] {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                } else {
                    value.push(chars[i]);
                }
                i += 1;
            }
            if i >= chars.len() {
                return Err("a string literal is not closed".into());
            }
            i += 1;
            // Adjacent literals are one ("a" "b").
            match tokens.last_mut() {
                Some(Token::Text(previous)) => previous.push_str(&value),
                _ => tokens.push(Token::Text(value)),
            }
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || (chars[i] == ':' && chars.get(i + 1) == Some(&':'))) {
                i += if chars[i] == ':' { 2 } else { 1 };
            }
            tokens.push(Token::Word(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() || ((c == '-' || c == '+' || c == '.') && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || ((chars[i] == '-' || chars[i] == '+') && matches!(chars[i - 1], 'e' | 'E'))) {
                i += 1;
            }
            tokens.push(Token::Number(chars[start..i].iter().collect()));
        } else if "{};<>[],=()@:".contains(c) {
            tokens.push(Token::Punct(c));
            i += 1;
        } else {
            return Err(format!("unexpected character '{c}' in the IDL"));
        }
    }
    Ok(tokens)
}

struct Struct {
    name: String,
    members: Vec<String>,
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// Enclosing module names.
    modules: Vec<String>,
    /// `typedef T name[N];` → (`.msg` base type, array suffix).
    typedefs: HashMap<String, (String, String)>,
    structs: Vec<Struct>,
    /// `.msg` constant lines by the full name of the struct they belong to.
    constants: HashMap<String, Vec<String>>,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Result<Token, String> {
        let token = self.tokens.get(self.pos).cloned().ok_or("the IDL ends too early")?;
        self.pos += 1;
        Ok(token)
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        match self.next()? {
            Token::Punct(p) if p == c => Ok(()),
            other => Err(format!("expected '{c}' in the IDL, found {other:?}")),
        }
    }

    fn word(&mut self) -> Result<String, String> {
        match self.next()? {
            Token::Word(w) => Ok(w),
            other => Err(format!("expected a name in the IDL, found {other:?}")),
        }
    }

    /// Skips annotations: `@name` and `@name(...)`.
    fn skip_annotations(&mut self) -> Result<(), String> {
        while self.peek() == Some(&Token::Punct('@')) {
            self.pos += 1;
            self.word()?;
            if self.peek() == Some(&Token::Punct('(')) {
                let mut depth = 0;
                loop {
                    match self.next()? {
                        Token::Punct('(') => depth += 1,
                        Token::Punct(')') => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    }

    /// Definitions until the end, or until the `}` closing a module when `in_module`.
    fn definitions(&mut self, in_module: bool) -> Result<(), String> {
        loop {
            self.skip_annotations()?;
            match self.peek() {
                None if !in_module => return Ok(()),
                None => return Err("a module is not closed".into()),
                Some(Token::Punct('}')) if in_module => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(Token::Punct(';')) => self.pos += 1,
                _ => self.definition()?,
            }
        }
    }

    fn definition(&mut self) -> Result<(), String> {
        let keyword = self.word()?;
        match keyword.as_str() {
            "module" => {
                let name = self.word()?;
                self.expect('{')?;
                self.modules.push(name);
                let result = self.definitions(true);
                self.modules.pop();
                result
            }
            "struct" => self.structure(),
            "typedef" => {
                let (base, suffix) = self.type_spec()?;
                let name = self.word()?;
                let array = self.array_suffix()?;
                self.expect(';')?;
                self.typedefs.insert(self.scoped(&name), (base, format!("{suffix}{array}")));
                Ok(())
            }
            "const" => {
                let (base, _) = self.type_spec()?;
                let name = self.word()?;
                self.expect('=')?;
                let value = match self.next()? {
                    Token::Number(n) => n,
                    Token::Text(t) => t,
                    Token::Word(w) => w.to_ascii_lowercase(),
                    other => return Err(format!("unexpected constant value {other:?}")),
                };
                self.expect(';')?;
                // `module Foo_Constants` inside `pkg::msg` holds the constants of `pkg/msg/Foo`.
                let owner = self.modules.last().and_then(|m| m.strip_suffix("_Constants")).map(|m| {
                    let outer = &self.modules[..self.modules.len() - 1];
                    format!("{}/{m}", outer.join("/"))
                });
                if let Some(owner) = owner {
                    self.constants.entry(owner).or_default().push(format!("{base} {name}={value}"));
                }
                Ok(())
            }
            other => Err(format!("'{other}' definitions are not read (module, struct, typedef and const are)")),
        }
    }

    /// The full `.msg` name of `name` declared in the current module.
    fn scoped(&self, name: &str) -> String {
        let mut parts = self.modules.clone();
        parts.push(name.to_string());
        parts.join("/")
    }

    fn structure(&mut self) -> Result<(), String> {
        let name = self.word()?;
        let full = self.scoped(&name);
        self.expect('{')?;
        let mut members = Vec::new();
        loop {
            self.skip_annotations()?;
            if self.peek() == Some(&Token::Punct('}')) {
                self.pos += 1;
                break;
            }
            let (base, suffix) = self.type_spec()?;
            let member = self.word()?;
            let array = self.array_suffix()?;
            self.expect(';')?;
            members.push(format!("{base}{suffix}{array} {member}"));
        }
        self.structs.push(Struct { name: full, members });
        Ok(())
    }

    /// `[N]` after a member or typedef name, as a `.msg` suffix.
    fn array_suffix(&mut self) -> Result<String, String> {
        if self.peek() != Some(&Token::Punct('[')) {
            return Ok(String::new());
        }
        self.pos += 1;
        let size = match self.next()? {
            Token::Number(n) => n,
            other => return Err(format!("expected an array size in the IDL, found {other:?}")),
        };
        self.expect(']')?;
        if self.peek() == Some(&Token::Punct('[')) {
            return Err("multi-dimensional arrays are not read".into());
        }
        Ok(format!("[{size}]"))
    }

    /// A type: (`.msg` base type, suffix from a sequence or a typedef: `[]`, `[<=N]`, `[N]`).
    fn type_spec(&mut self) -> Result<(String, String), String> {
        let first = self.word()?;
        let base = match first.as_str() {
            "sequence" => {
                self.expect('<')?;
                let (element, inner) = self.type_spec()?;
                if !inner.is_empty() {
                    return Err("sequences of arrays are not read".into());
                }
                let bound = if self.peek() == Some(&Token::Punct(',')) {
                    self.pos += 1;
                    match self.next()? {
                        Token::Number(n) => Some(n),
                        other => return Err(format!("expected a sequence bound, found {other:?}")),
                    }
                } else {
                    None
                };
                self.expect('>')?;
                return Ok((element, bound.map_or("[]".to_string(), |n| format!("[<={n}]"))));
            }
            "string" | "wstring" => {
                let mut name = first.clone();
                if self.peek() == Some(&Token::Punct('<')) {
                    self.pos += 1;
                    let bound = match self.next()? {
                        Token::Number(n) => n,
                        other => return Err(format!("expected a string bound, found {other:?}")),
                    };
                    self.expect('>')?;
                    name = format!("{first}<={bound}");
                }
                name
            }
            "unsigned" => match self.word()?.as_str() {
                "short" => "uint16".into(),
                "long" if self.eat_word("long") => "uint64".into(),
                "long" => "uint32".into(),
                other => return Err(format!("unknown IDL type 'unsigned {other}'")),
            },
            "long" if self.eat_word("long") => "int64".into(),
            "long" if self.eat_word("double") => return Err("long double fields are not read".into()),
            "long" => "int32".into(),
            "short" => "int16".into(),
            "boolean" => "bool".into(),
            "octet" => "byte".into(),
            "char" => "char".into(),
            "wchar" => return Err("wchar fields are not read".into()),
            "float" => "float32".into(),
            "double" => "float64".into(),
            "int8" | "uint8" | "int16" | "uint16" | "int32" | "uint32" | "int64" | "uint64" => first.clone(),
            scoped => return Ok(self.named_type(scoped)),
        };
        Ok((base, String::new()))
    }

    /// A typedef, or a struct named with `::` (`pkg::msg::Type`) or relative to the module.
    fn named_type(&self, name: &str) -> (String, String) {
        let slashed = name.replace("::", "/");
        let candidates = [slashed.clone(), self.scoped(&slashed)];
        for candidate in &candidates {
            if let Some((base, suffix)) = self.typedefs.get(candidate) {
                return (base.clone(), suffix.clone());
            }
        }
        if slashed.contains('/') {
            (slashed, String::new())
        } else {
            (self.scoped(&slashed), String::new())
        }
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if self.peek() == Some(&Token::Word(word.to_string())) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::definition::{Arity, FieldType, Registry};

    /// As rosidl generates them (comments, annotations with verbatim text, typedefs, constants).
    const IDL: &str = r#"================================================================================
IDL: pkg/msg/Sample
// generated from rosidl_adapter/resource/msg.idl.em
// with input from pkg/msg/Sample.msg
// generated code does not contain a copyright notice

#include "builtin_interfaces/msg/Time.idl"
#include "pkg/msg/Point.idl"

module pkg {
  module msg {
    typedef double double__9[9];
    module Sample_Constants {
      const uint8 MODE_A = 1;
      const string NAME = "a \"quoted\" name";
    };
    @verbatim (language="comment", text=
      "A sample (with parentheses) and \"quotes\".")
    struct Sample {
      builtin_interfaces::msg::Time stamp;

      @default (value=0.5)
      double gain;

      double__9 covariance;

      sequence<pkg::msg::Point> points;

      sequence<int32, 5> bounded;

      string<10> label;

      boolean flag;

      octet raw;

      unsigned long long big;

      pkg::msg::Point corners[2];
    };
  };
};

================================================================================
IDL: pkg/msg/Point
module pkg {
  module msg {
    struct Point {
      float x;

      float y;
    };
  };
};
"#;

    #[test]
    fn a_rosidl_generated_idl_becomes_the_msg_text_our_parser_reads() {
        let text = idl_to_msg("pkg/msg/Sample", IDL).unwrap();
        let registry = Registry::parse_ros2("pkg/msg/Sample", &text).unwrap();
        let root = registry.root();
        let fields: Vec<(&str, &FieldType, Arity)> = root.fields.iter().map(|f| (f.name.as_str(), &f.ty, f.arity)).collect();
        assert_eq!(fields.len(), 10, "{text}");
        assert_eq!(fields[2].2, Arity::Fixed(9), "{text}");
        assert_eq!(fields[3].1, &FieldType::Message("pkg/Point".into()));
        assert_eq!(fields[3].2, Arity::Variable);
        assert_eq!(fields[9].2, Arity::Fixed(2));
        assert_eq!(root.constants.len(), 2, "{text}");
        assert!(text.contains("string NAME=a \"quoted\" name"), "{text}");
        assert!(registry.get("pkg/Point").is_some_and(|p| p.fields.len() == 2));
    }

    #[test]
    fn what_the_subset_does_not_cover_is_named() {
        assert!(idl_to_msg("a/msg/B", "module a { module msg { struct B { long double x; }; }; };").unwrap_err().contains("long double"));
        assert!(idl_to_msg("a/msg/B", "module a { module msg { union U switch (long) { case 1: long x; }; }; };").unwrap_err().contains("union"));
        assert!(idl_to_msg("a/msg/C", "module a { module msg { struct B { long x; }; }; };").unwrap_err().contains("no struct a/msg/C"));
        assert!(idl_to_msg("a/msg/B", "module a { struct B { long x; };").is_err());
    }
}
