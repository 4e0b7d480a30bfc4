//! Writers of small PyTorch files, opcode by opcode, laid out as PyTorch (and Python 2)
//! write them. For tests and fuzzing seeds: the reader is checked against files whose every
//! byte is known. Not a general pickler.

use std::io::{Cursor, Write};

use super::DType;

/// Pickle opcodes the writers use.
pub mod op {
    pub const PROTO: u8 = 0x80;
    pub const STOP: u8 = b'.';
    pub const MARK: u8 = b'(';
    pub const TUPLE: u8 = b't';
    pub const TUPLE1: u8 = 0x85;
    pub const EMPTY_TUPLE: u8 = b')';
    pub const EMPTY_LIST: u8 = b']';
    pub const EMPTY_DICT: u8 = b'}';
    pub const APPENDS: u8 = b'e';
    pub const SETITEM: u8 = b's';
    pub const SETITEMS: u8 = b'u';
    pub const REDUCE: u8 = b'R';
    pub const BUILD: u8 = b'b';
    pub const BINPERSID: u8 = b'Q';
    pub const BINPUT: u8 = b'q';
    pub const BINGET: u8 = b'h';
    pub const NONE: u8 = b'N';
    pub const NEWTRUE: u8 = 0x88;
    pub const NEWFALSE: u8 = 0x89;
    pub const STACK_GLOBAL: u8 = 0x93;
}

/// Which Python wrote the file: strings, tensor rebuilds and OrderedDict differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Python 2 and PyTorch 0.2: SHORT_BINSTRING, `_rebuild_tensor`, `OrderedDict([[k, v]])`.
    Py2,
    /// Python 3: BINUNICODE, `_rebuild_tensor_v2`, `OrderedDict()` + SETITEMS + BUILD.
    Py3,
}

/// A pickle being written.
#[derive(Debug, Clone)]
pub struct Pickler {
    pub out: Vec<u8>,
    pub style: Style,
    memo: Vec<(String, u8)>,
}

impl Pickler {
    pub fn new(style: Style) -> Self {
        Self {
            out: vec![op::PROTO, 2],
            style,
            memo: Vec::new(),
        }
    }

    pub fn op(&mut self, code: u8) -> &mut Self {
        self.out.push(code);
        self
    }

    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.out.extend_from_slice(bytes);
        self
    }

    /// A `str`: SHORT_BINSTRING/BINSTRING for Python 2, BINUNICODE for Python 3.
    pub fn str(&mut self, s: &str) -> &mut Self {
        let len = s.len();
        match (self.style, u8::try_from(len)) {
            (Style::Py2, Ok(n)) => self.op(b'U').op(n),
            (Style::Py2, Err(_)) => self.op(b'T').raw(&(len as u32).to_le_bytes()),
            (Style::Py3, _) => self.op(b'X').raw(&(len as u32).to_le_bytes()),
        };
        self.raw(s.as_bytes())
    }

    pub fn int(&mut self, v: i64) -> &mut Self {
        if let Ok(b) = u8::try_from(v) {
            self.op(b'K').op(b)
        } else if let Ok(w) = u16::try_from(v) {
            self.op(b'M').raw(&w.to_le_bytes())
        } else if let Ok(d) = i32::try_from(v) {
            self.op(b'J').raw(&d.to_le_bytes())
        } else {
            self.op(0x8a).op(8).raw(&v.to_le_bytes())
        }
    }

    pub fn usizes(&mut self, v: &[usize]) -> &mut Self {
        self.op(op::MARK);
        for &x in v {
            self.int(x as i64);
        }
        self.op(op::TUPLE)
    }

    /// GLOBAL `module name`, memoised: a second use is a BINGET, as Python writes it.
    pub fn global(&mut self, module: &str, name: &str) -> &mut Self {
        let id = format!("{module}\n{name}");
        if let Some(&(_, slot)) = self.memo.iter().find(|(k, _)| *k == id) {
            return self.op(op::BINGET).op(slot);
        }
        let slot = self.memo.len() as u8;
        self.memo.push((id.clone(), slot));
        self.op(b'c')
            .raw(id.as_bytes())
            .op(b'\n')
            .op(op::BINPUT)
            .op(slot)
    }

    pub fn finish(&mut self) -> Vec<u8> {
        self.op(op::STOP);
        std::mem::take(&mut self.out)
    }
}

/// A storage: its key and its raw little-endian bytes.
#[derive(Debug, Clone)]
pub struct Storage {
    pub key: String,
    pub dtype: DType,
    pub data: Vec<u8>,
}

impl Storage {
    pub fn f32(key: &str, values: &[f32]) -> Self {
        Self {
            key: key.to_owned(),
            dtype: DType::F32,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    pub fn numel(&self) -> usize {
        self.data.len() / self.dtype.size_in_bytes()
    }
}

/// A state-dict entry: a strided view of a storage (optionally through a legacy view).
#[derive(Debug, Clone)]
pub struct Tensor {
    pub name: String,
    pub storage: usize,
    /// `(view_key, offset, size)`: a legacy view into the root storage.
    pub view: Option<(String, usize, usize)>,
    pub offset: usize,
    pub shape: Vec<usize>,
    pub stride: Vec<usize>,
}

impl Tensor {
    /// A contiguous tensor over the start of storage `storage`.
    pub fn contiguous(name: &str, storage: usize, shape: &[usize]) -> Self {
        let mut stride = vec![1; shape.len()];
        for i in (0..shape.len().saturating_sub(1)).rev() {
            stride[i] = stride[i + 1] * shape[i + 1];
        }
        Self {
            name: name.to_owned(),
            storage,
            view: None,
            offset: 0,
            shape: shape.to_vec(),
            stride,
        }
    }
}

pub fn storage_type(d: DType) -> &'static str {
    match d {
        DType::F32 => "FloatStorage",
        DType::F64 => "DoubleStorage",
        DType::F16 => "HalfStorage",
        DType::BF16 => "BFloat16Storage",
        DType::I64 => "LongStorage",
        DType::I32 => "IntStorage",
        DType::I16 => "ShortStorage",
        DType::I8 => "CharStorage",
        DType::U8 => "ByteStorage",
        DType::Bool => "BoolStorage",
    }
}

/// The state-dict pickle (`data.pkl`, or the fourth pickle of a legacy file).
pub fn state_dict_pickle(style: Style, storages: &[Storage], tensors: &[Tensor]) -> Vec<u8> {
    let mut p = Pickler::new(style);
    p.global("collections", "OrderedDict");
    match style {
        Style::Py2 => {
            p.op(op::EMPTY_LIST).op(op::MARK);
            for t in tensors {
                p.op(op::EMPTY_LIST).op(op::MARK).str(&t.name);
                tensor(&mut p, storages, t);
                p.op(op::APPENDS);
            }
            p.op(op::APPENDS).op(op::TUPLE1).op(op::REDUCE);
        }
        Style::Py3 => {
            p.op(op::EMPTY_TUPLE).op(op::REDUCE).op(op::MARK);
            for t in tensors {
                p.str(&t.name);
                tensor(&mut p, storages, t);
            }
            p.op(op::SETITEMS);
            // state = {'_metadata': OrderedDict([('', {'version': 1})])}
            p.op(op::EMPTY_DICT).str("_metadata");
            p.global("collections", "OrderedDict")
                .op(op::EMPTY_TUPLE)
                .op(op::REDUCE);
            p.str("").op(op::EMPTY_DICT).str("version").int(1);
            p.op(op::SETITEM)
                .op(op::SETITEM)
                .op(op::SETITEM)
                .op(op::BUILD);
        }
    }
    p.finish()
}

fn tensor(p: &mut Pickler, storages: &[Storage], t: &Tensor) {
    let rebuild = match p.style {
        Style::Py2 => "_rebuild_tensor",
        Style::Py3 => "_rebuild_tensor_v2",
    };
    p.global("torch._utils", rebuild).op(op::MARK);
    let s = &storages[t.storage];
    p.op(op::MARK).str("storage");
    p.global("torch", storage_type(s.dtype));
    p.str(&s.key).str("cpu").int(s.numel() as i64);
    match &t.view {
        Some((key, off, size)) => {
            p.op(op::MARK).str(key).int(*off as i64).int(*size as i64);
            p.op(op::TUPLE);
        }
        None => {
            p.op(op::NONE);
        }
    }
    p.op(op::TUPLE).op(op::BINPERSID);
    p.int(t.offset as i64).usizes(&t.shape).usizes(&t.stride);
    if p.style == Style::Py3 {
        p.op(op::NEWFALSE);
        p.global("collections", "OrderedDict")
            .op(op::EMPTY_TUPLE)
            .op(op::REDUCE);
    }
    p.op(op::TUPLE).op(op::REDUCE);
}

/// A legacy file around any state-dict pickle: header pickles, the pickle, sorted storage
/// keys, then each storage's element count and bytes.
pub fn legacy_container(style: Style, main: &[u8], storages: &[Storage]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut magic = Pickler::new(style);
    magic.raw(&[
        0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
    ]);
    out.extend(magic.finish());
    out.extend(Pickler::new(style).int(1001).finish());
    let mut sys = Pickler::new(style);
    sys.op(op::EMPTY_DICT).op(op::MARK);
    sys.str("protocol_version").int(1001);
    sys.str("little_endian").op(op::NEWTRUE);
    sys.str("type_sizes").op(op::EMPTY_DICT).op(op::MARK);
    sys.str("short").int(2).str("int").int(4).str("long").int(8);
    sys.op(op::SETITEMS).op(op::SETITEMS);
    out.extend(sys.finish());
    out.extend_from_slice(main);
    let mut sorted: Vec<&Storage> = storages.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut keys = Pickler::new(style);
    keys.op(op::EMPTY_LIST).op(op::MARK);
    for s in &sorted {
        keys.str(&s.key);
    }
    keys.op(op::APPENDS);
    out.extend(keys.finish());
    for s in sorted {
        out.extend((s.numel() as i64).to_le_bytes());
        out.extend_from_slice(&s.data);
    }
    out
}

/// A complete legacy file.
pub fn legacy_file(style: Style, storages: &[Storage], tensors: &[Tensor]) -> Vec<u8> {
    let main = state_dict_pickle(style, storages, tensors);
    legacy_container(style, &main, storages)
}

/// A PyTorch zip around any `data.pkl`, entries stored uncompressed as PyTorch writes them.
pub fn zip_container(
    prefix: &str,
    data_pkl: &[u8],
    storages: &[Storage],
) -> zip::result::ZipResult<Vec<u8>> {
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
    z.start_file(format!("{prefix}/data.pkl"), opts)?;
    z.write_all(data_pkl)?;
    z.start_file(format!("{prefix}/byteorder"), opts)?;
    z.write_all(b"little")?;
    for s in storages {
        z.start_file(format!("{prefix}/data/{}", s.key), opts)?;
        z.write_all(&s.data)?;
    }
    z.start_file(format!("{prefix}/version"), opts)?;
    z.write_all(b"3\n")?;
    Ok(z.finish()?.into_inner())
}

/// A complete PyTorch zip file (Python 3 pickle; zip files have no legacy views).
pub fn zip_file(
    prefix: &str,
    storages: &[Storage],
    tensors: &[Tensor],
) -> zip::result::ZipResult<Vec<u8>> {
    zip_container(
        prefix,
        &state_dict_pickle(Style::Py3, storages, tensors),
        storages,
    )
}
