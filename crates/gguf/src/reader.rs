//! A validating reader for the GGUF header: magic, version, metadata and tensor table.
//!
//! It checks every count, length and offset against the file size before allocating or
//! trusting it, and checks the tensor data layout the way ggml's own loader does, so a file
//! that passes here will not make llama.cpp abort. It reads from any `Read`, so the same
//! code parses a local file or a prefix fetched over HTTP (then `NeedMore` asks for more).

use std::collections::HashSet;
use std::fmt;
use std::io::{self, Read};

use super::types::{ggml_type, tensor_bytes};

pub const GGUF_MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;
const MAX_DIMS: u32 = 4;
/// Arrays with more elements than this are counted but their values are not kept
/// (the vocabulary, its scores and merges are tens of thousands of entries).
const KEEP_ARRAY_MAX: u64 = 4096;
const MAX_ARRAY_DEPTH: u32 = 2;

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Array),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// An array value; `values` is empty when `len` is above the keep limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    pub elem_type: u32,
    pub len: u64,
    pub values: Vec<Value>,
}

impl Value {
    /// Any integer type, widened; `None` for negatives and non-integers.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// A short human rendering (arrays as `[len items]`).
    pub fn display_short(&self) -> String {
        match self {
            Value::String(s) if s.len() > 80 => {
                let cut = (0..=77).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
                format!("{:?}… ({} bytes)", &s[..cut], s.len())
            }
            Value::String(s) => format!("{s:?}"),
            Value::Array(a) => format!("[{} items]", a.len),
            Value::Bool(b) => b.to_string(),
            Value::F32(v) => v.to_string(),
            Value::F64(v) => v.to_string(),
            other => other
                .as_u64()
                .map_or_else(|| format!("{other:?}"), |v| v.to_string()),
        }
    }
}

/// One tensor's entry in the tensor table.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub dims: Vec<u64>,
    pub ggml_type: u32,
    /// Offset relative to the start of the tensor data section.
    pub offset: u64,
    pub n_elements: u64,
    pub n_bytes: u64,
}

/// A parsed, validated GGUF header.
#[derive(Debug, Clone)]
pub struct GgufHeader {
    pub version: u32,
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Absolute offset of the tensor data section.
    pub data_offset: u64,
    pub file_size: u64,
}

impl GgufHeader {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(Value::as_u64)
    }

    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Value::as_f64)
    }

    /// Length of an array value (kept or not).
    pub fn array_len(&self, key: &str) -> Option<u64> {
        match self.get(key)? {
            Value::Array(a) => Some(a.len),
            _ => None,
        }
    }

    /// Bytes of tensor data the header describes (the end of the last tensor).
    pub fn data_bytes(&self) -> u64 {
        self.tensors
            .iter()
            .map(|t| t.offset + t.n_bytes)
            .max()
            .unwrap_or(0)
    }
}

/// Why a GGUF header could not be read. `NeedMore` only arises when parsing a prefix of a
/// file whose total size is known (HTTP range reads); the other kinds mean a bad file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GgufError {
    Empty,
    NotGguf {
        first_bytes: Vec<u8>,
    },
    UnsupportedVersion(u32),
    /// The file ends inside the header or tensor table.
    TruncatedHeader {
        at: u64,
        file_size: u64,
    },
    /// A length read from the header runs past the end of the file: cut short, or corrupt.
    PastEnd {
        what: String,
        at: u64,
        need: u64,
        file_size: u64,
    },
    /// The header is whole but the tensor data is cut short.
    TruncatedData {
        tensor: String,
        needs: u64,
        file_size: u64,
    },
    Invalid(String),
    /// The prefix given to the parser ended at `have` bytes; more is needed.
    NeedMore {
        have: u64,
    },
    Io(String),
}

impl fmt::Display for GgufError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GgufError::Empty => write!(f, "empty file (0 bytes), not a GGUF model"),
            GgufError::NotGguf { first_bytes } => {
                let looks_text = !first_bytes.is_empty()
                    && first_bytes.iter().all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
                if looks_text {
                    let shown = String::from_utf8_lossy(first_bytes);
                    write!(f, "not a GGUF file: it starts with text {:?}, not the magic \"GGUF\"", shown.trim_end())
                } else {
                    write!(f, "not a GGUF file: it starts with bytes {first_bytes:02x?}, not the magic \"GGUF\"")
                }
            }
            GgufError::UnsupportedVersion(v) => {
                write!(f, "unsupported GGUF version {v} (this reader handles versions 2 and 3)")
            }
            GgufError::TruncatedHeader { at, file_size } => write!(
                f,
                "truncated GGUF header: the header needs {at} bytes but the file has {file_size}"
            ),
            GgufError::TruncatedData { tensor, needs, file_size } => write!(
                f,
                "truncated tensor data: tensor '{tensor}' needs the file to reach byte {needs}, but it has {file_size} bytes"
            ),
            GgufError::PastEnd { what, at, need, file_size } => write!(
                f,
                "truncated GGUF header: {what} at byte {at} needs {need} bytes but the file ends at byte {file_size} (cut short or corrupt)"
            ),
            GgufError::Invalid(msg) => write!(f, "invalid GGUF header: {msg}"),
            GgufError::NeedMore { have } => write!(f, "GGUF header continues past the first {have} bytes"),
            GgufError::Io(msg) => write!(f, "read error: {msg}"),
        }
    }
}

impl std::error::Error for GgufError {}

/// Parses a GGUF header from `reader`, positioned at the start of a file of `file_size`
/// bytes. `check_data` also checks that every tensor's data lies within the file (skip it
/// only for a header fetched without the file).
pub fn parse(reader: impl Read, file_size: u64, check_data: bool) -> Result<GgufHeader, GgufError> {
    if file_size == 0 {
        return Err(GgufError::Empty);
    }
    let mut r = Cursor {
        inner: reader,
        pos: 0,
        file_size,
    };

    let mut magic = [0u8; 4];
    let n = r.read_up_to(&mut magic)?;
    if n < 4 || &magic != GGUF_MAGIC {
        let mut first = magic[..n].to_vec();
        if n == 4 {
            let mut more = [0u8; 12];
            let m = r.read_up_to(&mut more).unwrap_or(0);
            first.extend_from_slice(&more[..m]);
        }
        return Err(GgufError::NotGguf { first_bytes: first });
    }
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        return Err(GgufError::UnsupportedVersion(version));
    }
    let tensor_count = r.u64()?;
    let kv_count = r.u64()?;
    // Each key-value pair takes at least 8 (key length) + 1 (key) + 4 (type) + 1 bytes; each
    // tensor info at least 8 + 1 + 4 + 8 + 4 + 8. Counts beyond that cannot fit the file.
    let room = file_size.saturating_sub(24);
    if kv_count > room / 14 {
        return Err(GgufError::Invalid(format!(
            "metadata count {kv_count} cannot fit in a {file_size}-byte file"
        )));
    }
    if tensor_count > room / 33 {
        return Err(GgufError::Invalid(format!(
            "tensor count {tensor_count} cannot fit in a {file_size}-byte file"
        )));
    }

    let mut metadata = Vec::with_capacity(kv_count as usize);
    let mut keys = HashSet::new();
    for i in 0..kv_count {
        let key = r.string()?;
        if key.is_empty() {
            return Err(GgufError::Invalid(format!(
                "metadata entry {i} has an empty key"
            )));
        }
        let ty = r.u32()?;
        // The vocabulary is kept whole: prompt rendering needs the BOS/EOS token texts.
        let keep_all = key == "tokenizer.ggml.tokens";
        let value = r.value(ty, 0, keep_all).map_err(|e| match e {
            GgufError::Invalid(msg) => GgufError::Invalid(format!("metadata '{key}': {msg}")),
            GgufError::PastEnd {
                what,
                at,
                need,
                file_size,
            } => GgufError::PastEnd {
                what: format!("metadata '{key}' ({what})"),
                at,
                need,
                file_size,
            },
            other => other,
        })?;
        if !keys.insert(key.clone()) {
            return Err(GgufError::Invalid(format!(
                "duplicate metadata key '{key}'"
            )));
        }
        metadata.push((key, value));
    }

    let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some((_, Value::U32(a))) if *a > 0 && a.is_power_of_two() => u64::from(*a),
        Some((_, v)) => {
            return Err(GgufError::Invalid(format!(
                "general.alignment must be a power-of-two u32, found {v:?}"
            )))
        }
    };

    let mut tensors = Vec::with_capacity(tensor_count as usize);
    let mut names = HashSet::new();
    for i in 0..tensor_count {
        let name = r.string()?;
        let n_dims = r.u32()?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(GgufError::Invalid(format!(
                "tensor {i} '{name}' has {n_dims} dimensions (1 to {MAX_DIMS} allowed)"
            )));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(r.u64()?);
        }
        let ty_id = r.u32()?;
        let offset = r.u64()?;
        let ty = ggml_type(ty_id).ok_or_else(|| {
            GgufError::Invalid(format!("tensor '{name}' has unknown type id {ty_id}"))
        })?;
        let n_elements = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n <= i64::MAX as u64)
            .ok_or_else(|| {
                GgufError::Invalid(format!("tensor '{name}' dimensions {dims:?} overflow"))
            })?;
        if dims[0] % ty.block_size != 0 {
            return Err(GgufError::Invalid(format!(
                "tensor '{name}': row length {} is not a multiple of the {} block size {}",
                dims[0], ty.name, ty.block_size
            )));
        }
        let n_bytes = tensor_bytes(ty, n_elements)
            .ok_or_else(|| GgufError::Invalid(format!("tensor '{name}' size overflows")))?;
        if !names.insert(name.clone()) {
            return Err(GgufError::Invalid(format!(
                "duplicate tensor name '{name}'"
            )));
        }
        tensors.push(TensorInfo {
            name,
            dims,
            ggml_type: ty_id,
            offset,
            n_elements,
            n_bytes,
        });
    }

    let data_offset = align_up(r.pos, alignment);
    // ggml requires the tensors to be laid out back to back, each padded to the alignment.
    let mut expected = 0u64;
    for t in &tensors {
        if t.offset != expected {
            return Err(GgufError::Invalid(format!(
                "tensor '{}' has data offset {}, expected {expected}",
                t.name, t.offset
            )));
        }
        expected = t
            .offset
            .checked_add(t.n_bytes)
            .map(|end| align_up(end, alignment))
            .ok_or_else(|| GgufError::Invalid(format!("tensor '{}' offset overflows", t.name)))?;
    }
    if data_offset > file_size {
        return Err(GgufError::TruncatedHeader {
            at: data_offset,
            file_size,
        });
    }
    if check_data {
        for t in &tensors {
            let end = data_offset + t.offset + t.n_bytes;
            if end > file_size {
                return Err(GgufError::TruncatedData {
                    tensor: t.name.clone(),
                    needs: end,
                    file_size,
                });
            }
        }
    }

    Ok(GgufHeader {
        version,
        metadata,
        tensors,
        alignment,
        data_offset,
        file_size,
    })
}

fn align_up(x: u64, alignment: u64) -> u64 {
    x.div_ceil(alignment) * alignment
}

/// A reader that knows where it is and how big the whole file is.
struct Cursor<R> {
    inner: R,
    pos: u64,
    file_size: u64,
}

impl<R: Read> Cursor<R> {
    /// Reads as much of `buf` as the source has; returns how many bytes arrived.
    fn read_up_to(&mut self, buf: &mut [u8]) -> Result<usize, GgufError> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(GgufError::Io(e.to_string())),
            }
        }
        self.pos += got as u64;
        Ok(got)
    }

    fn exact(&mut self, buf: &mut [u8]) -> Result<(), GgufError> {
        let want = buf.len() as u64;
        if self.pos + want > self.file_size {
            return Err(GgufError::TruncatedHeader {
                at: self.pos + want,
                file_size: self.file_size,
            });
        }
        let got = self.read_up_to(buf)?;
        if (got as u64) < want {
            // The file is long enough, so the source is a prefix: ask for more.
            return Err(GgufError::NeedMore { have: self.pos });
        }
        Ok(())
    }

    /// Checks that `n` more bytes can exist before allocating for them.
    fn ensure_room(&self, n: u64, what: &str) -> Result<(), GgufError> {
        if self
            .pos
            .checked_add(n)
            .is_none_or(|end| end > self.file_size)
        {
            return Err(GgufError::PastEnd {
                what: what.to_string(),
                at: self.pos,
                need: n,
                file_size: self.file_size,
            });
        }
        Ok(())
    }

    fn u8(&mut self) -> Result<u8, GgufError> {
        let mut b = [0u8; 1];
        self.exact(&mut b)?;
        Ok(b[0])
    }
    fn u16(&mut self) -> Result<u16, GgufError> {
        let mut b = [0u8; 2];
        self.exact(&mut b)?;
        Ok(u16::from_le_bytes(b))
    }
    fn u32(&mut self) -> Result<u32, GgufError> {
        let mut b = [0u8; 4];
        self.exact(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn u64(&mut self) -> Result<u64, GgufError> {
        let mut b = [0u8; 8];
        self.exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn string(&mut self) -> Result<String, GgufError> {
        let len = self.u64()?;
        self.ensure_room(len, "string")?;
        let mut buf = vec![0u8; len as usize];
        self.exact(&mut buf)?;
        Ok(String::from_utf8(buf)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    fn value(&mut self, ty: u32, depth: u32, keep_all: bool) -> Result<Value, GgufError> {
        Ok(match ty {
            0 => Value::U8(self.u8()?),
            1 => Value::I8(self.u8()? as i8),
            2 => Value::U16(self.u16()?),
            3 => Value::I16(self.u16()? as i16),
            4 => Value::U32(self.u32()?),
            5 => Value::I32(self.u32()? as i32),
            6 => Value::F32(f32::from_bits(self.u32()?)),
            7 => match self.u8()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(GgufError::Invalid(format!("bool value {b}"))),
            },
            8 => Value::String(self.string()?),
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(GgufError::Invalid("arrays nested too deeply".into()));
                }
                let elem_type = self.u32()?;
                let len = self.u64()?;
                let min_elem = match elem_type {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8 | 10..=12 => 8,
                    9 => 12,
                    other => {
                        return Err(GgufError::Invalid(format!("array of unknown type {other}")))
                    }
                };
                let bytes = len
                    .checked_mul(min_elem)
                    .ok_or_else(|| GgufError::Invalid(format!("array length {len} overflows")))?;
                self.ensure_room(bytes, "array")?;
                let keep = keep_all || len <= KEEP_ARRAY_MAX;
                let mut values = Vec::with_capacity(if keep { len as usize } else { 0 });
                for _ in 0..len {
                    let v = self.value(elem_type, depth + 1, false)?;
                    if keep {
                        values.push(v);
                    }
                }
                Value::Array(Array {
                    elem_type,
                    len,
                    values,
                })
            }
            10 => Value::U64(self.u64()?),
            11 => Value::I64(self.u64()? as i64),
            12 => Value::F64(f64::from_bits(self.u64()?)),
            other => return Err(GgufError::Invalid(format!("unknown value type {other}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::writer::GgufBuilder;
    use super::*;

    fn small() -> GgufBuilder {
        GgufBuilder::new()
            .str("general.architecture", "llama")
            .u32("llama.context_length", 2048)
            .str_array("tokenizer.ggml.tokens", &["a", "b", "c"])
            .tensor("token_embd.weight", &[64, 3], 8)
            .tensor("output_norm.weight", &[64], 0)
    }

    fn parse_bytes(b: &[u8]) -> Result<GgufHeader, GgufError> {
        parse(b, b.len() as u64, true)
    }

    #[test]
    fn reads_a_well_formed_file() {
        let h = parse_bytes(&small().build()).unwrap();
        assert_eq!(h.version, 3);
        assert_eq!(h.get_str("general.architecture"), Some("llama"));
        assert_eq!(h.get_u64("llama.context_length"), Some(2048));
        assert_eq!(h.array_len("tokenizer.ggml.tokens"), Some(3));
        assert_eq!(h.tensors.len(), 2);
        assert_eq!(h.tensors[0].n_bytes, 2 * 3 * 34);
        assert_eq!(h.data_offset % 32, 0);
    }

    #[test]
    fn empty_and_foreign_files() {
        assert_eq!(parse_bytes(b"").unwrap_err(), GgufError::Empty);
        let e = parse_bytes(b"hello, I am a text file\n").unwrap_err();
        assert!(
            e.to_string().contains("starts with text \"hello, I am a"),
            "{e}"
        );
        assert!(matches!(
            parse_bytes(&[0x7f, b'E', b'L', b'F']).unwrap_err(),
            GgufError::NotGguf { .. }
        ));
    }

    #[test]
    fn version_is_checked() {
        let mut b = small().build();
        b[4] = 1;
        assert_eq!(
            parse_bytes(&b).unwrap_err(),
            GgufError::UnsupportedVersion(1)
        );
    }

    #[test]
    fn every_header_truncation_is_caught() {
        let b = small().build();
        let h = parse_bytes(&b).unwrap();
        for cut in 4..h.data_offset as usize {
            let e = parse_bytes(&b[..cut]).unwrap_err();
            assert!(
                matches!(
                    e,
                    GgufError::TruncatedHeader { .. }
                        | GgufError::PastEnd { .. }
                        | GgufError::Invalid(_)
                ),
                "cut at {cut}: {e:?}"
            );
        }
    }

    #[test]
    fn truncated_tensor_data() {
        let b = small().build();
        let e = parse_bytes(&b[..b.len() - 1]).unwrap_err();
        assert!(
            matches!(e, GgufError::TruncatedData { ref tensor, .. } if tensor == "output_norm.weight"),
            "{e:?}"
        );
        // Without the data check the header alone is fine.
        assert!(parse(&b[..b.len() - 1], (b.len() - 1) as u64, false).is_ok());
    }

    #[test]
    fn a_prefix_of_a_longer_file_asks_for_more() {
        let b = small().build();
        let e = parse(&b[..40], b.len() as u64, false).unwrap_err();
        assert!(
            matches!(e, GgufError::NeedMore { have } if have <= 40),
            "{e:?}"
        );
    }

    #[test]
    fn absurd_counts_and_lengths_do_not_allocate() {
        let mut b = small().build();
        // kv count = u64::MAX
        b[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            parse_bytes(&b).unwrap_err(),
            GgufError::Invalid(_)
        ));
        let mut b = small().build();
        // first key's length = huge
        b[24..32].copy_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(matches!(
            parse_bytes(&b).unwrap_err(),
            GgufError::PastEnd { .. }
        ));
    }

    #[test]
    fn unknown_tensor_type_and_bad_offsets() {
        let b = GgufBuilder::new().tensor("x", &[32], 200).build();
        assert!(parse_bytes(&b)
            .unwrap_err()
            .to_string()
            .contains("unknown type id 200"));
        let b = GgufBuilder::new().tensor("x", &[33], 8).build();
        assert!(parse_bytes(&b)
            .unwrap_err()
            .to_string()
            .contains("not a multiple"));
        // Move the second tensor's offset.
        let b = small().build();
        let h = parse_bytes(&b).unwrap();
        let mut bad = b.clone();
        let pos = h.data_offset as usize; // search backwards for the offset field: last 8 bytes before padding
        let table_end = (0..pos).rev().find(|&i| bad[i] != 0).unwrap();
        let _ = table_end;
        let needle = 224u64.to_le_bytes(); // second tensor's offset: align(204, 32)
        let at = bad.windows(8).rposition(|w| w == needle).unwrap();
        bad[at..at + 8].copy_from_slice(&256u64.to_le_bytes());
        assert!(parse_bytes(&bad)
            .unwrap_err()
            .to_string()
            .contains("expected 224"));
    }
}
