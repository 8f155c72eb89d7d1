//! Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`),
//! which kubectl's typed clients send: `kubectl create namespace`, `create deployment`,
//! `create configmap`, `create secret`, `create job`, … The API server reads them as it reads
//! JSON; the sandbox turns them into the JSON object Go would write for the same value, and
//! goes on as with a JSON body.
//!
//! A body is the magic `k8s\0` and a `runtime.Unknown` message holding the object's
//! `apiVersion` and `kind` and its encoded bytes. How each kind's message is laid out (field
//! numbers, JSON names, which Go fields are pointers and which are omitted when empty) comes
//! from the Go types themselves: `fields.json` is what `tests/cluster/cmd/prototable` prints
//! from Kubernetes' modules, and `.ci/run` checks that it still is.
//!
//! The answers stay JSON: kubectl asks for protobuf or anything else (`*/*`).

use std::{collections::HashMap, sync::OnceLock};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// What prefixes every protobuf object of the API.
const MAGIC: &[u8] = b"k8s\0";

/// How deep messages may nest; the kinds' own types nest less than 20 deep.
const MAX_DEPTH: usize = 64;

/// Why a body could not be read.
#[derive(Debug, PartialEq)]
pub enum Undecodable {
    /// A kind the sandbox has no protobuf layout for (custom resources have none at all).
    Unsupported(String),
    /// Bytes that are not a protobuf object of the kind they name.
    Malformed(String),
}

/// The object of a protobuf body, as JSON.
pub fn decode(body: &[u8]) -> Result<Value, Undecodable> {
    let malformed = |e: String| Undecodable::Malformed(e);
    let envelope = body.strip_prefix(MAGIC).ok_or_else(|| {
        malformed("the body does not begin with the protobuf prefix \"k8s\\0\"".into())
    })?;
    let (mut api_version, mut kind, mut raw, mut encoding) = ("", "", &[][..], "");
    for field in Reader::new(envelope) {
        match field.map_err(malformed)? {
            (1, Wire::Bytes(type_meta)) => {
                for field in Reader::new(type_meta) {
                    match field.map_err(malformed)? {
                        (1, Wire::Bytes(v)) => api_version = text(v).map_err(malformed)?,
                        (2, Wire::Bytes(k)) => kind = text(k).map_err(malformed)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(bytes)) => raw = bytes,
            (3, Wire::Bytes(e)) => encoding = text(e).map_err(malformed)?,
            _ => {}
        }
    }
    if !encoding.is_empty() {
        return Err(malformed(format!(
            "unsupported content encoding {encoding:?}"
        )));
    }
    let table = table();
    let Some(root) = table.kinds.get(&format!("{api_version}/{kind}")) else {
        return Err(Undecodable::Unsupported(format!(
            "{api_version}, Kind={kind}"
        )));
    };
    let object = Decoder { table }
        .message(raw, root, 0)
        .map_err(|e| malformed(format!("{kind}: {e}")))?;
    let mut whole = Map::new();
    whole.insert("apiVersion".into(), json!(api_version));
    whole.insert("kind".into(), json!(kind));
    if let Value::Object(fields) = object {
        whole.extend(fields);
    }
    Ok(Value::Object(whole))
}

/// The layout of the kinds' messages, as `prototable` prints it.
#[derive(Deserialize)]
struct Table {
    /// The message of each kind, by `apiVersion/kind`.
    kinds: HashMap<String, String>,
    /// The fields of each message.
    messages: HashMap<String, Vec<Field>>,
}

/// A field: number, JSON name, flags (`p` a Go pointer, `o` omitted when empty, `r`
/// repeated, `m` a map), and type (a scalar, a value written as one JSON value, a message's
/// name, or `key>value` for a map).
#[derive(Deserialize)]
struct Field(u32, String, String, String);

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        serde_json::from_str(include_str!("fields.json"))
            .expect("fields.json is the table tests/cluster/cmd/prototable prints")
    })
}

struct Decoder {
    table: &'static Table,
}

impl Decoder {
    /// A message of the type `name`, as a JSON object.
    fn message(&self, bytes: &[u8], name: &str, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(format!("messages nest deeper than {MAX_DEPTH}"));
        }
        let fields = self
            .table
            .messages
            .get(name)
            .ok_or_else(|| format!("no layout for the message {name}"))?;
        let mut object = Map::new();
        for entry in Reader::new(bytes) {
            let (number, wire) = entry?;
            // Fields of a newer Kubernetes than the table's are skipped, as Go skips them.
            let Some(Field(_, json_name, flags, kind)) = fields.iter().find(|f| f.0 == number)
            else {
                continue;
            };
            if flags.contains('m') {
                let (key_kind, value_kind) = kind
                    .split_once('>')
                    .ok_or_else(|| format!("{json_name}: a map without key and value types"))?;
                let Wire::Bytes(pair) = wire else {
                    return Err(format!("{json_name}: a map entry must be a message"));
                };
                let (mut key, mut value) = (Value::String(String::new()), Value::Null);
                for field in Reader::new(pair) {
                    match field? {
                        (1, w) => key = self.value(w, key_kind, depth + 1)?,
                        (2, w) => value = self.value(w, value_kind, depth + 1)?,
                        _ => {}
                    }
                }
                let key = match key {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                let map = object.entry(json_name.clone()).or_insert_with(|| json!({}));
                if let Value::Object(map) = map {
                    map.insert(key, value);
                }
            } else if flags.contains('r') {
                let list = object.entry(json_name.clone()).or_insert_with(|| json!([]));
                let Value::Array(list) = list else { continue };
                match (wire, kind.as_str()) {
                    // Packed numbers: several in one length-delimited field.
                    (Wire::Bytes(packed), "int" | "bool") => {
                        let mut reader = Reader::new(packed);
                        while !reader.done() {
                            let n = reader.varint()?;
                            list.push(scalar_varint(n, kind));
                        }
                    }
                    (wire, _) => list.push(self.value(wire, kind, depth + 1)?),
                }
            } else {
                object.insert(json_name.clone(), self.value(wire, kind, depth + 1)?);
            }
        }
        // What Go leaves out of JSON: empty values of fields tagged `omitempty` that are not
        // pointers (a pointer sent is a value set, even if zero), and unset times.
        for Field(_, json_name, flags, kind) in fields {
            let Some(value) = object.get(json_name) else {
                continue;
            };
            let empty = match value {
                Value::Null => true,
                Value::String(s) => s.is_empty() && is_scalar(kind),
                Value::Number(n) => n.as_f64() == Some(0.0) && is_scalar(kind),
                Value::Bool(b) => !b && is_scalar(kind),
                Value::Array(a) => a.is_empty(),
                Value::Object(_) => false,
            };
            if empty && (value.is_null() || (flags.contains('o') && !flags.contains('p'))) {
                object.remove(json_name);
            }
        }
        Ok(Value::Object(object))
    }

    /// One value of the type `kind`.
    fn value(&self, wire: Wire<'_>, kind: &str, depth: usize) -> Result<Value, String> {
        Ok(match (kind, wire) {
            ("int" | "bool", Wire::Varint(n)) => scalar_varint(n, kind),
            ("float", Wire::Fixed64(bits)) => json!(f64::from_bits(bits)),
            ("string", Wire::Bytes(b)) => json!(text(b)?),
            ("bytes", Wire::Bytes(b)) => {
                json!(base64::engine::general_purpose::STANDARD.encode(b))
            }
            ("time" | "microtime", Wire::Bytes(b)) => time(b, kind == "microtime")?,
            ("duration", Wire::Bytes(b)) => {
                let nanos = fields(b)?.varint(1).unwrap_or(0) as i64;
                json!(go_duration(nanos))
            }
            ("quantity", Wire::Bytes(b)) => json!(fields(b)?.text(1)?.unwrap_or_default()),
            ("intorstring", Wire::Bytes(b)) => {
                let f = fields(b)?;
                if f.varint(1) == Some(1) {
                    json!(f.text(3)?.unwrap_or_default())
                } else {
                    json!(f.varint(2).unwrap_or(0) as i64 as i32)
                }
            }
            ("json", Wire::Bytes(b)) => match fields(b)?.bytes(1) {
                Some(raw) if !raw.is_empty() => serde_json::from_slice(raw)
                    .map_err(|e| format!("an embedded JSON value: {e}"))?,
                _ => Value::Null,
            },
            (name, Wire::Bytes(b)) if name.contains('.') => self.message(b, name, depth)?,
            (kind, wire) => return Err(format!("a {kind} cannot be {wire:?}")),
        })
    }
}

fn is_scalar(kind: &str) -> bool {
    matches!(kind, "string" | "int" | "bool" | "float" | "bytes")
}

fn scalar_varint(n: u64, kind: &str) -> Value {
    if kind == "bool" {
        json!(n != 0)
    } else {
        // int32 and int64 alike: negative numbers are sent sign-extended to 64 bits.
        json!(n as i64)
    }
}

/// A `metav1.Time` (whole seconds, as Go writes it) or `metav1.MicroTime`; `null` for the
/// zero time, which Go writes as `null`.
fn time(bytes: &[u8], micro: bool) -> Result<Value, String> {
    // Go writes its zero time as an empty message.
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    let f = fields(bytes)?;
    let seconds = f.varint(1).unwrap_or(0) as i64;
    let nanos = f.varint(2).unwrap_or(0) as i64 as i32;
    let at = jiff::Timestamp::new(seconds, if micro { nanos / 1000 * 1000 } else { 0 })
        .map_err(|e| format!("a time out of range: {e}"))?;
    let format = if micro {
        "%Y-%m-%dT%H:%M:%S%.6fZ"
    } else {
        "%Y-%m-%dT%H:%M:%SZ"
    };
    Ok(json!(at.strftime(format).to_string()))
}

/// A duration as Go's `time.Duration.String` writes it: `1h2m3.5s`, `150ms`, `0s`.
fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    if n < 1_000_000_000 {
        let (unit, per) = match n {
            0..1_000 => ("ns", 1),
            1_000..1_000_000 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        return format!("{sign}{}{unit}", decimal(n, per));
    }
    let (hours, rest) = (n / 3_600_000_000_000, n % 3_600_000_000_000);
    let (minutes, rest) = (rest / 60_000_000_000, rest % 60_000_000_000);
    let seconds = decimal(rest, 1_000_000_000);
    match (hours, minutes) {
        (0, 0) => format!("{sign}{seconds}s"),
        (0, m) => format!("{sign}{m}m{seconds}s"),
        (h, m) => format!("{sign}{h}h{m}m{seconds}s"),
    }
}

/// `n / per` with its fraction and no trailing zeros.
fn decimal(n: u64, per: u64) -> String {
    let (whole, fraction) = (n / per, n % per);
    if fraction == 0 {
        return whole.to_string();
    }
    let digits = per.ilog10() as usize;
    let fraction = format!("{fraction:0digits$}");
    format!("{whole}.{}", fraction.trim_end_matches('0'))
}

fn text(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|_| "a string that is not UTF-8".to_owned())
}

/// A value on the wire.
#[derive(Debug, Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    /// No field of the API's kinds is one; skipped.
    Fixed32,
}

/// The fields of a message, in order: (number, value).
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    failed: bool,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader {
            bytes,
            at: 0,
            failed: false,
        }
    }

    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .bytes
                .get(self.at)
                .ok_or("the message ends inside a number")?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a number longer than ten bytes".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or("a field runs past the end of its message")?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn field(&mut self) -> Result<(u32, Wire<'a>), String> {
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| "a field number out of range")?;
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => Wire::Fixed64(u64::from_le_bytes(
                self.take(8)?.try_into().unwrap_or_default(),
            )),
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| "a length out of range")?;
                Wire::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Wire::Fixed32
            }
            other => return Err(format!("wire type {other} is not used by the API")),
        };
        Ok((number, wire))
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<(u32, Wire<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.done() {
            return None;
        }
        let field = self.field();
        self.failed = field.is_err();
        Some(field)
    }
}

/// The fields of a small message, by number (the last one sent wins, as in protobuf).
struct Fields<'a>(Vec<(u32, Wire<'a>)>);

fn fields(bytes: &[u8]) -> Result<Fields<'_>, String> {
    Reader::new(bytes).collect::<Result<_, _>>().map(Fields)
}

impl<'a> Fields<'a> {
    fn get(&self, number: u32) -> Option<Wire<'a>> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| *n == number)
            .map(|(_, w)| *w)
    }

    fn varint(&self, number: u32) -> Option<u64> {
        match self.get(number)? {
            Wire::Varint(n) => Some(n),
            _ => None,
        }
    }

    fn bytes(&self, number: u32) -> Option<&'a [u8]> {
        match self.get(number)? {
            Wire::Bytes(b) => Some(b),
            _ => None,
        }
    }

    fn text(&self, number: u32) -> Result<Option<&'a str>, String> {
        self.bytes(number).map(text).transpose()
    }
}

#[cfg(test)]
mod tests;
