"""Write and read PyTorch's legacy (non-zip) serialization, Python 2 / PyTorch 0.2 flavour.

`write_py2_state_dict` hand-emits the byte stream that `torch.save(state_dict, f)` produced under
Python 2.7 (cPickle, protocol 2) with PyTorch 0.2 for a model on CUDA, like the pretrained
`21styles.model`:

    pickle  MAGIC_NUMBER 0x1950a86a20f9469cfc6c        (PROTO 2, LONG1, STOP)
    pickle  PROTOCOL_VERSION 1001                       (BININT2)
    pickle  sys_info {'protocol_version': 1001, 'little_endian': True,
                      'type_sizes': {'short': 2, 'int': 4, 'long': 8}}
    pickle  the state dict:
            GLOBAL 'collections\\nOrderedDict\\n' REDUCE'd with ONE argument, the list of
            [key, tensor] 2-element lists (Python 2's OrderedDict.__reduce__); keys are py2 `str`
            (SHORT_BINSTRING / BINSTRING); every tensor is
            GLOBAL 'torch._utils\\n_rebuild_tensor\\n' REDUCE (storage, offset, size, stride);
            every storage is BINPERSID of
            ('storage', GLOBAL 'torch.cuda\\nFloatStorage\\n', root_key, 'cuda:0', numel, None)
    pickle  sorted list of root keys (py2 str)
    then per root key, in that sorted order: int64 LE element count, raw float32 LE data.

Memoisation follows cPickle: every str, tuple, list, global and reduced object is BINPUT (or
LONG_BINPUT past index 255) when first written; an object met again is BINGET (LONG_BINGET).
A persistent id is looked up before the memo, so a storage met twice is written twice, with the
same root key.  Strings built at run time (root keys, 'cuda:0') are new objects each time and are
written again; constants ('storage') and globals are fetched from the memo.

`read_legacy` is a small opcode interpreter (no `pickle` module, nothing executed) for both the
Python 2 files above and the `_use_new_zipfile_serialization=False` files of newer PyTorch
(`_rebuild_tensor_v2`, BINUNICODE).  It returns numpy arrays, honouring storage offset and
strides.  It is the Python twin of what the Rust reader has to do.
"""

from __future__ import annotations

import collections
import struct
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
MAGIC_BYTES = bytes.fromhex("80028a0a6cfc9c46f9206aa850192e")

# ---------------------------------------------------------------------------------------------
# Emitter
# ---------------------------------------------------------------------------------------------


class Global:
    """A class or function pickled by reference (GLOBAL 'module\\nname\\n')."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name


class Reduce:
    """An object pickled as `callable(*args)` (cPickle save_reduce): callable, args, REDUCE."""

    def __init__(self, func: Global, args: tuple):
        self.func, self.args = func, args


class PersId:
    """A persistent id: the tuple is pickled, then BINPERSID.  Never memoised itself."""

    def __init__(self, pid: tuple):
        self.pid = pid


class Long:
    """A Python 2 `long` (pickled with LONG1 whatever its size)."""

    def __init__(self, value: int):
        self.value = value


class Py2Dict:
    """A Python 2 dict; items are written in the order Python 2.7 would iterate them."""

    def __init__(self, items: Sequence[Tuple[bytes, object]]):
        self.items = py2_dict_order(list(items))


def py2_str_hash(s: bytes) -> int:
    """Python 2.7's (unrandomised) 64-bit string hash."""
    mask = (1 << 64) - 1
    if not s:
        return 0
    x = (s[0] << 7) & mask
    for c in s:
        x = ((1000003 * x) & mask) ^ c
    x ^= len(s)
    if x >= 1 << 63:
        x -= 1 << 64
    return -2 if x == -1 else x


def py2_dict_order(items: List[Tuple[bytes, object]]) -> List[Tuple[bytes, object]]:
    """Slot order of a small (8-slot) Python 2.7 dict with str keys inserted in this order."""
    if len(items) > 5:  # would resize; not needed here
        raise ValueError("py2_dict_order handles at most 5 items")
    mask = 7
    slots: List[Optional[Tuple[bytes, object]]] = [None] * 8
    for key, value in items:
        h = py2_str_hash(key) & ((1 << 64) - 1)
        i = h & mask
        perturb = h
        while slots[i & mask] is not None:
            i = (i << 2) + i + perturb + 1
            perturb >>= 5
        slots[i & mask] = (key, value)
    return [s for s in slots if s is not None]


class Py2Pickler:
    """Protocol-2 pickle emitter with cPickle's memo behaviour (memo keyed by object identity)."""

    def __init__(self):
        self.out = bytearray()
        self.memo: Dict[int, Tuple[int, object]] = {}

    # memo -------------------------------------------------------------------------------------
    def _put(self, obj) -> None:
        idx = len(self.memo)
        self.memo[id(obj)] = (idx, obj)  # keep obj alive so ids are never reused
        if idx < 256:
            self.out += b"q" + bytes([idx])
        else:
            self.out += b"r" + struct.pack("<I", idx)

    def _get(self, obj) -> bool:
        hit = self.memo.get(id(obj))
        if hit is None:
            return False
        idx = hit[0]
        if idx < 256:
            self.out += b"h" + bytes([idx])
        else:
            self.out += b"j" + struct.pack("<I", idx)
        return True

    # top level --------------------------------------------------------------------------------
    def dump(self, obj) -> bytes:
        self.out += b"\x80\x02"
        self.save(obj)
        self.out += b"."
        return bytes(self.out)

    def save(self, obj) -> None:
        if isinstance(obj, PersId):  # persistent ids are checked before the memo
            self.save(obj.pid)
            self.out += b"Q"  # BINPERSID
            return
        if obj is None:
            self.out += b"N"
        elif obj is True:
            self.out += b"\x88"
        elif obj is False:
            self.out += b"\x89"
        elif isinstance(obj, int):
            self._save_int(obj)
        elif isinstance(obj, Long):
            self._save_long(obj.value)
        elif self._get(obj):
            pass
        elif isinstance(obj, bytes):
            if len(obj) < 256:
                self.out += b"U" + bytes([len(obj)]) + obj  # SHORT_BINSTRING
            else:
                self.out += b"T" + struct.pack("<i", len(obj)) + obj  # BINSTRING
            self._put(obj)
        elif isinstance(obj, tuple):
            self._save_tuple(obj)
        elif isinstance(obj, list):
            self.out += b"]"  # EMPTY_LIST
            self._put(obj)
            self._batch(obj, b"a", b"e")
        elif isinstance(obj, Py2Dict):
            self.out += b"}"  # EMPTY_DICT
            self._put(obj)
            flat = [x for kv in obj.items for x in kv]
            if len(obj.items) == 1:
                self.save(flat[0])
                self.save(flat[1])
                self.out += b"s"  # SETITEM
            elif obj.items:
                self.out += b"("
                for x in flat:
                    self.save(x)
                self.out += b"u"  # SETITEMS
        elif isinstance(obj, Global):
            self.out += b"c" + obj.module.encode() + b"\n" + obj.name.encode() + b"\n"
            self._put(obj)
        elif isinstance(obj, Reduce):
            self.save(obj.func)
            self.save(obj.args)
            self.out += b"R"
            self._put(obj)
        else:
            raise TypeError(f"cannot emit {type(obj).__name__}")

    def _save_int(self, v: int) -> None:
        if 0 <= v < 256:
            self.out += b"K" + bytes([v])
        elif 0 <= v < 65536:
            self.out += b"M" + struct.pack("<H", v)
        elif -(2 ** 31) <= v < 2 ** 31:
            self.out += b"J" + struct.pack("<i", v)
        else:  # cPickle falls back to the text INT opcode for big py2 ints
            self.out += b"I" + str(v).encode() + b"\n"

    def _save_long(self, v: int) -> None:
        # pickle.encode_long: two's complement little-endian, as short as possible
        if v == 0:
            data = b""
        else:
            data = v.to_bytes((v.bit_length() >> 3) + 1, "little", signed=True)
            if v < 0 and len(data) > 1 and data[-1] == 0xFF and data[-2] & 0x80:
                data = data[:-1]
        if len(data) < 256:
            self.out += b"\x8a" + bytes([len(data)]) + data
        else:
            self.out += b"\x8b" + struct.pack("<i", len(data)) + data

    def _save_tuple(self, t: tuple) -> None:
        if not t:
            self.out += b")"  # EMPTY_TUPLE, never memoised
            return
        if len(t) <= 3:
            for x in t:
                self.save(x)
            self.out += {1: b"\x85", 2: b"\x86", 3: b"\x87"}[len(t)]
        else:
            self.out += b"("
            for x in t:
                self.save(x)
            self.out += b"t"
        self._put(t)

    def _batch(self, items: list, one: bytes, many: bytes) -> None:
        for start in range(0, len(items), 1000):
            chunk = items[start:start + 1000]
            if len(chunk) == 1:
                self.save(chunk[0])
                self.out += one
            else:
                self.out += b"("
                for x in chunk:
                    self.save(x)
                self.out += many


class Storage:
    """A root storage: a flat float32 array and the root key it is saved under."""

    def __init__(self, root_key: str, data: np.ndarray):
        self.root_key = root_key
        self.data = np.ascontiguousarray(data, dtype="<f4").reshape(-1)


FLOAT_STORAGE = Global("torch.cuda", "FloatStorage")
REBUILD_TENSOR = Global("torch._utils", "_rebuild_tensor")
ORDERED_DICT = Global("collections", "OrderedDict")
STORAGE_TAG = b"storage"


def tensor_obj(storage: Storage, offset: int, size: Sequence[int], stride: Sequence[int]) -> Reduce:
    """A 0.2-style tensor: _rebuild_tensor(storage, offset, size, stride); the pid and its
    strings are built fresh for every call, as torch 0.2's persistent_id did."""
    pid = (STORAGE_TAG, FLOAT_STORAGE, storage.root_key.encode(), ("cuda:%d" % 0).encode(),
           int(storage.data.size), None)
    return Reduce(REBUILD_TENSOR, (PersId(pid), int(offset), tuple(int(s) for s in size),
                                   tuple(int(s) for s in stride)))


def write_py2_file(path: str, items: Sequence[Tuple[str, Reduce]], storages: Sequence[Storage]) -> bytes:
    """Write a legacy py2 file.  `items`: (key, tensor object) in state-dict order; repeat the
    same tensor object to alias (BINGET).  `storages`: every root storage referenced."""
    out = bytearray()
    out += Py2Pickler().dump(Long(MAGIC_NUMBER))
    out += Py2Pickler().dump(PROTOCOL_VERSION)
    sys_info = Py2Dict([
        (b"protocol_version", PROTOCOL_VERSION),
        (b"little_endian", True),
        (b"type_sizes", Py2Dict([(b"short", 2), (b"int", 4), (b"long", 8)])),
    ])
    out += Py2Pickler().dump(sys_info)
    pairs = [[k.encode(), t] for k, t in items]
    out += Py2Pickler().dump(Reduce(ORDERED_DICT, (pairs,)))
    by_key = {s.root_key: s for s in storages}
    if len(by_key) != len(storages):
        raise ValueError("duplicate root keys")
    keys = sorted(by_key)
    out += Py2Pickler().dump([k.encode() for k in keys])
    for k in keys:
        data = by_key[k].data
        out += struct.pack("<q", data.size)
        out += data.tobytes()
    with open(path, "wb") as fh:
        fh.write(out)
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Reader
# ---------------------------------------------------------------------------------------------

_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ByteStorage": np.dtype("u1"),
}
_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_tensor_v2"),
} | {(m, n) for m in ("torch", "torch.cuda") for n in _STORAGE_DTYPES}

_MARK = object()


class _Tensor:
    def __init__(self, storage_key, offset, size, stride):
        self.storage_key, self.offset, self.size, self.stride = storage_key, offset, size, stride


class _ODict:
    def __init__(self, items):
        self.items = items
        self.state = None


class LegacyFile:
    """Result of `read_legacy`: the parsed pieces of a legacy torch file."""

    def __init__(self):
        self.sys_info = None
        self.state_dict: "collections.OrderedDict[str, np.ndarray]" = collections.OrderedDict()
        self.storage_keys: List[str] = []
        self.storage_info: Dict[str, Tuple[str, str, int]] = {}  # key -> (type, location, numel)
        self.tensors: Dict[str, _Tensor] = {}
        self.pickle_bounds: List[Tuple[int, int]] = []
        self.strings_seen: set = set()  # opcode names used for strings


def _text(v) -> str:
    return v.decode("ascii") if isinstance(v, bytes) else v


def _unpickle(buf: bytes, pos: int, lf: LegacyFile, persistent):
    """Interpret one pickle starting at `pos`; return (value, end position)."""
    stack: list = []
    memo: Dict[int, object] = {}
    marks: List[int] = []

    def pop_mark():
        start = marks.pop()
        items = stack[start:]
        del stack[start:]
        return items

    def u8():
        nonlocal pos
        v = buf[pos]
        pos += 1
        return v

    def take(n):
        nonlocal pos
        if pos + n > len(buf):
            raise ValueError("truncated pickle")
        v = buf[pos:pos + n]
        pos += n
        return v

    while True:
        op = take(1)
        if op == b"\x80":
            if u8() > 5:
                raise ValueError("unsupported pickle protocol")
        elif op == b".":
            if len(stack) != 1 or marks:
                raise ValueError("bad stack at STOP")
            return stack[0], pos
        elif op == b"(":
            marks.append(len(stack))
        elif op == b"N":
            stack.append(None)
        elif op == b"\x88":
            stack.append(True)
        elif op == b"\x89":
            stack.append(False)
        elif op == b"K":
            stack.append(u8())
        elif op == b"M":
            stack.append(struct.unpack("<H", take(2))[0])
        elif op == b"J":
            stack.append(struct.unpack("<i", take(4))[0])
        elif op == b"\x8a":
            n = u8()
            stack.append(int.from_bytes(take(n), "little", signed=True))
        elif op == b"I":
            end = buf.index(b"\n", pos)
            txt = take(end - pos + 1)[:-1]
            stack.append(False if txt == b"00" else True if txt == b"01" else int(txt))
        elif op == b"U":
            lf.strings_seen.add("SHORT_BINSTRING")
            stack.append(bytes(take(u8())))
        elif op == b"T":
            lf.strings_seen.add("BINSTRING")
            stack.append(bytes(take(struct.unpack("<i", take(4))[0])))
        elif op == b"X":
            lf.strings_seen.add("BINUNICODE")
            stack.append(take(struct.unpack("<I", take(4))[0]).decode("utf-8"))
        elif op == b"\x8c":
            lf.strings_seen.add("SHORT_BINUNICODE")
            stack.append(take(u8()).decode("utf-8"))
        elif op == b"q":
            memo[u8()] = stack[-1]
        elif op == b"r":
            memo[struct.unpack("<I", take(4))[0]] = stack[-1]
        elif op == b"h":
            stack.append(memo[u8()])
        elif op == b"j":
            stack.append(memo[struct.unpack("<I", take(4))[0]])
        elif op == b")":
            stack.append(())
        elif op in (b"\x85", b"\x86", b"\x87"):
            n = op[0] - 0x84
            t = tuple(stack[-n:])
            del stack[-n:]
            stack.append(t)
        elif op == b"t":
            stack.append(tuple(pop_mark()))
        elif op == b"]":
            stack.append([])
        elif op == b"a":
            v = stack.pop()
            stack[-1].append(v)
        elif op == b"e":
            items = pop_mark()
            stack[-1].extend(items)
        elif op == b"}":
            stack.append({})
        elif op == b"s":
            v = stack.pop()
            k = stack.pop()
            _setitem(stack[-1], k, v)
        elif op == b"u":
            items = pop_mark()
            for k, v in zip(items[0::2], items[1::2]):
                _setitem(stack[-1], k, v)
        elif op == b"c":
            end1 = buf.index(b"\n", pos)
            module = take(end1 - pos + 1)[:-1].decode("ascii")
            end2 = buf.index(b"\n", pos)
            name = take(end2 - pos + 1)[:-1].decode("ascii")
            if (module, name) not in _ALLOWED_GLOBALS:
                raise ValueError(f"refusing global {module}.{name}")
            stack.append(("global", module, name))
        elif op == b"R":
            args = stack.pop()
            func = stack.pop()
            stack.append(_reduce(func, args))
        elif op == b"Q":
            stack.append(persistent(stack.pop()))
        elif op == b"b":
            state = stack.pop()
            obj = stack[-1]
            if not isinstance(obj, _ODict):
                raise ValueError("BUILD on something else than an OrderedDict")
            obj.state = state
        else:
            raise ValueError(f"unsupported opcode {op!r} at {pos - 1}")


def _setitem(target, k, v):
    if isinstance(target, _ODict):
        target.items.append((k, v))
    elif isinstance(target, dict):
        target[k] = v
    else:
        raise ValueError("SETITEM on a non-dict")


def _reduce(func, args):
    if not (isinstance(func, tuple) and func and func[0] == "global"):
        raise ValueError("REDUCE of a non-global")
    name = (func[1], func[2])
    if name == ("collections", "OrderedDict"):
        if args == ():
            return _ODict([])
        if len(args) == 1 and isinstance(args[0], list):
            items = []
            for pair in args[0]:
                if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
                    raise ValueError("OrderedDict item is not a pair")
                items.append((pair[0], pair[1]))
            return _ODict(items)
        raise ValueError("unexpected OrderedDict arguments")
    if name == ("torch._utils", "_rebuild_tensor"):
        if len(args) != 4:
            raise ValueError("_rebuild_tensor takes 4 arguments")
        storage, offset, size, stride = args
    elif name == ("torch._utils", "_rebuild_tensor_v2"):
        if len(args) < 4:
            raise ValueError("_rebuild_tensor_v2 takes at least 4 arguments")
        storage, offset, size, stride = args[:4]
    else:
        raise ValueError(f"cannot call {name}")
    if not (isinstance(storage, tuple) and storage and storage[0] == "storage-ref"):
        raise ValueError("tensor without a storage")
    return _Tensor(storage[1], int(offset), tuple(size), tuple(stride))


def read_legacy(path: str) -> LegacyFile:
    """Parse a legacy torch file (py2 or py3 flavour) into numpy arrays, executing nothing."""
    with open(path, "rb") as fh:
        buf = fh.read()
    if buf[:4] == b"PK\x03\x04":
        raise ValueError("zip file, not legacy")
    lf = LegacyFile()
    pos = 0

    def no_pid(pid):
        raise ValueError("persistent id outside the state dict")

    magic, end = _unpickle(buf, pos, lf, no_pid)
    lf.pickle_bounds.append((pos, end))
    pos = end
    if magic != MAGIC_NUMBER:
        raise ValueError("bad magic number")
    version, end = _unpickle(buf, pos, lf, no_pid)
    lf.pickle_bounds.append((pos, end))
    pos = end
    if version != PROTOCOL_VERSION:
        raise ValueError(f"protocol version {version}")
    sys_info, end = _unpickle(buf, pos, lf, no_pid)
    lf.pickle_bounds.append((pos, end))
    pos = end
    lf.sys_info = {_text(k): ({_text(a): b for a, b in v.items()} if isinstance(v, dict) else v)
                   for k, v in sys_info.items()}
    if not lf.sys_info.get("little_endian"):
        raise ValueError("big-endian file")

    def persistent(pid):
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and _text(pid[0]) == "storage"):
            raise ValueError(f"unexpected persistent id {pid!r}")
        stype, key, location, numel = pid[1], _text(pid[2]), _text(pid[3]), int(pid[4])
        if len(pid) == 6 and pid[5] is not None:
            raise ValueError("storage views (view_metadata) not supported")
        if not (isinstance(stype, tuple) and stype[0] == "global" and stype[2] in _STORAGE_DTYPES):
            raise ValueError(f"unexpected storage type {stype!r}")
        prev = lf.storage_info.get(key)
        info = (f"{stype[1]}.{stype[2]}", location, numel)
        if prev is not None and prev != info:
            raise ValueError(f"storage {key} described two ways: {prev} vs {info}")
        lf.storage_info[key] = info
        return ("storage-ref", key)

    root, end = _unpickle(buf, pos, lf, persistent)
    lf.pickle_bounds.append((pos, end))
    pos = end
    if not isinstance(root, _ODict):
        raise ValueError("top object is not an OrderedDict")
    keys, end = _unpickle(buf, pos, lf, no_pid)
    lf.pickle_bounds.append((pos, end))
    pos = end
    lf.storage_keys = [_text(k) for k in keys]
    if set(lf.storage_keys) != set(lf.storage_info):
        raise ValueError("storage key list does not match the storages referenced")
    arrays = {}
    for key in lf.storage_keys:
        (numel,) = struct.unpack("<q", buf[pos:pos + 8])
        pos += 8
        stype, _, want = lf.storage_info[key]
        if numel != want:
            raise ValueError(f"storage {key}: {numel} elements in data, {want} in pickle")
        dt = _STORAGE_DTYPES[stype.split(".")[-1]]
        nbytes = numel * dt.itemsize
        if pos + nbytes > len(buf):
            raise ValueError("truncated storage data")
        arrays[key] = np.frombuffer(buf, dtype=dt, count=numel, offset=pos)
        pos += nbytes
    if pos != len(buf):
        raise ValueError(f"{len(buf) - pos} trailing bytes")
    for k, t in root.items:
        k = _text(k)
        if not isinstance(t, _Tensor):
            raise ValueError(f"{k}: not a tensor")
        base = arrays[t.storage_key]
        numel = int(np.prod(t.size)) if t.size else 1
        if numel:
            last = t.offset + sum((s - 1) * st for s, st in zip(t.size, t.stride))
            if t.offset < 0 or min(t.stride, default=0) < 0 or last >= base.size:
                raise ValueError(f"{k}: view out of its storage")
        view = np.lib.stride_tricks.as_strided(
            base[t.offset:], shape=t.size, strides=[s * base.itemsize for s in t.stride],
            writeable=False)
        lf.state_dict[k] = np.array(view)
        lf.tensors[k] = t
    return lf
