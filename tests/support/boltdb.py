"""A write-once BoltDB (bbolt) file writer, enough for Trivy to read a fixture DB.

The input is a nested dict: ``{bucket_name: {key: value_bytes | nested_dict}}``; a nested dict
is a sub-bucket. Top-level values must all be dicts because bbolt's root only holds buckets.

On-disk format written here (bbolt, little-endian, 4096-byte pages):

- page header ``<QHHI``: page id, flags, element count, overflow (extra pages that follow);
- pages 0 and 1: meta (magic, version 2, page size, flags, root bucket ``{root pgid,
  sequence}``, freelist pgid, high-water pgid, txid, FNV-1a-64 of the fields before it);
- page 2: an empty freelist;
- leaf pages: elements ``<IIII`` flags, pos, ksize, vsize (pos counts from the element);
  flag 1 marks a sub-bucket whose value is the bucket header ``<QQ`` root pgid, sequence,
  followed by an inline leaf page when the root pgid is 0;
- branch pages: elements ``<IIQ`` pos, ksize, child pgid, keyed by each child's first key.

Keys are sorted bytewise as bbolt's cursor relies on it.
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

PAGE_SIZE = 4096
MAGIC = 0xED0CDAED
FORMAT_VERSION = 2

BRANCH_PAGE = 0x01
LEAF_PAGE = 0x02
META_PAGE = 0x04
FREELIST_PAGE = 0x10
BUCKET_LEAF_FLAG = 0x01

PAGE_HEADER = struct.Struct("<QHHI")
LEAF_ELEMENT = struct.Struct("<IIII")
BRANCH_ELEMENT = struct.Struct("<IIQ")
BUCKET_HEADER = struct.Struct("<QQ")
# Meta fields covered by the checksum: magic, version, page size, flags, root pgid,
# root sequence, freelist pgid, high-water pgid, txid.
META_FIELDS = struct.Struct("<IIIIQQQQQ")

FREELIST_PGID = 2
FIRST_DATA_PGID = 3
# bbolt stores a bucket inline in its parent when its leaf fits in a quarter page.
MAX_INLINE_BUCKET_SIZE = PAGE_SIZE // 4
MAX_KEY_SIZE = 32768

BoltTree = Mapping[bytes | str, "bytes | BoltTree"]


def fnv1a_64(data: bytes) -> int:
    """FNV-1a 64-bit hash, the checksum bbolt puts at the end of each meta page."""
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


@dataclass(frozen=True)
class _Item:
    key: bytes
    flags: int
    value: bytes


@dataclass
class _PageWriter:
    """Hands out page ids in order and keeps the page images they were given."""

    pages: dict[int, bytes] = field(default_factory=dict)
    next_pgid: int = FIRST_DATA_PGID

    def add(self, flags: int, count: int, body: bytes) -> int:
        pgid = self.next_pgid
        page = _page_bytes(pgid, flags, count, body)
        self.pages[pgid] = _pad_to_pages(page)
        self.next_pgid += len(self.pages[pgid]) // PAGE_SIZE
        return pgid


def _pad_to_pages(page: bytes) -> bytes:
    page_count = max(1, -(-len(page) // PAGE_SIZE))
    return page.ljust(page_count * PAGE_SIZE, b"\0")


def _page_bytes(pgid: int, flags: int, count: int, body: bytes) -> bytes:
    """A page image; the overflow field counts the pages beyond the first one."""
    overflow = max(0, -(-(PAGE_HEADER.size + len(body)) // PAGE_SIZE) - 1)
    return PAGE_HEADER.pack(pgid, flags, count, overflow) + body


def _leaf_body(items: list[_Item]) -> bytes:
    elements = bytearray()
    data = bytearray()
    data_start = len(items) * LEAF_ELEMENT.size
    for index, item in enumerate(items):
        pos = data_start + len(data) - index * LEAF_ELEMENT.size
        elements += LEAF_ELEMENT.pack(item.flags, pos, len(item.key), len(item.value))
        data += item.key + item.value
    return bytes(elements + data)


def _branch_body(children: list[tuple[bytes, int]]) -> bytes:
    elements = bytearray()
    data = bytearray()
    data_start = len(children) * BRANCH_ELEMENT.size
    for index, (first_key, pgid) in enumerate(children):
        pos = data_start + len(data) - index * BRANCH_ELEMENT.size
        elements += BRANCH_ELEMENT.pack(pos, len(first_key), pgid)
        data += first_key
    return bytes(elements + data)


def _leaf_size(items: list[_Item]) -> int:
    return PAGE_HEADER.size + sum(
        LEAF_ELEMENT.size + len(item.key) + len(item.value) for item in items
    )


def _chunk(entries: list, entry_size: Callable[[object], int]) -> list[list]:
    """Greedy split so each chunk fits one page; a lone oversized entry gets overflow pages."""
    chunks: list[list] = [[]]
    used = PAGE_HEADER.size
    for entry in entries:
        size = entry_size(entry)
        if chunks[-1] and used + size > PAGE_SIZE:
            chunks.append([])
            used = PAGE_HEADER.size
        chunks[-1].append(entry)
        used += size
    return chunks


def _write_tree(items: list[_Item], writer: _PageWriter) -> int:
    """Writes a bucket's B+tree (leaves, then branch levels) and returns its root pgid."""
    level = [
        (chunk[0].key if chunk else b"", writer.add(LEAF_PAGE, len(chunk), _leaf_body(chunk)))
        for chunk in _chunk(items, lambda it: LEAF_ELEMENT.size + len(it.key) + len(it.value))
    ]
    while len(level) > 1:
        level = [
            (chunk[0][0], writer.add(BRANCH_PAGE, len(chunk), _branch_body(chunk)))
            for chunk in _chunk(level, lambda child: BRANCH_ELEMENT.size + len(child[0]))
        ]
    return level[0][1]


def _encode_key(key: bytes | str) -> bytes:
    encoded = key.encode() if isinstance(key, str) else bytes(key)
    if not 0 < len(encoded) <= MAX_KEY_SIZE:
        raise ValueError(f"bolt keys must be 1..{MAX_KEY_SIZE} bytes, got {len(encoded)}")
    return encoded


def _bucket_items(bucket: BoltTree, writer: _PageWriter) -> list[_Item]:
    items: dict[bytes, _Item] = {}
    for raw_key, value in bucket.items():
        key = _encode_key(raw_key)
        if key in items:
            raise ValueError(f"duplicate key {key!r}")
        if isinstance(value, Mapping):
            items[key] = _Item(key, BUCKET_LEAF_FLAG, _bucket_value(value, writer))
        elif isinstance(value, bytes | bytearray | memoryview):
            items[key] = _Item(key, 0, bytes(value))
        else:
            raise TypeError(f"value for {key!r} must be bytes or a dict, not {type(value)}")
    return [items[key] for key in sorted(items)]


def _bucket_value(bucket: BoltTree, writer: _PageWriter) -> bytes:
    """The value a parent stores for a sub-bucket: a header, plus the page when inline."""
    items = _bucket_items(bucket, writer)
    has_sub_buckets = any(item.flags & BUCKET_LEAF_FLAG for item in items)
    if not has_sub_buckets and _leaf_size(items) <= MAX_INLINE_BUCKET_SIZE:
        inline_page = _page_bytes(0, LEAF_PAGE, len(items), _leaf_body(items))
        return BUCKET_HEADER.pack(0, 0) + inline_page
    return BUCKET_HEADER.pack(_write_tree(items, writer), 0)


def _meta_page(pgid: int, root_pgid: int, high_water_pgid: int, txid: int) -> bytes:
    fields = META_FIELDS.pack(
        MAGIC, FORMAT_VERSION, PAGE_SIZE, 0, root_pgid, 0, FREELIST_PGID, high_water_pgid, txid
    )
    body = fields + struct.pack("<Q", fnv1a_64(fields))
    return _pad_to_pages(_page_bytes(pgid, META_PAGE, 0, body))


def build_bolt_file(tree: BoltTree) -> bytes:
    """The bytes of a bolt file holding ``tree`` (top-level values must be dicts)."""
    for name, value in tree.items():
        if not isinstance(value, Mapping):
            raise TypeError(f"top-level entry {name!r} must be a bucket (dict)")
    writer = _PageWriter()
    root_pgid = _write_tree(_bucket_items(tree, writer), writer)
    high_water = writer.next_pgid
    pages = [
        _meta_page(0, root_pgid, high_water, txid=0),
        _meta_page(1, root_pgid, high_water, txid=1),
        _pad_to_pages(_page_bytes(FREELIST_PGID, FREELIST_PAGE, 0, b"")),
    ]
    pages += [writer.pages[pgid] for pgid in sorted(writer.pages)]
    return b"".join(pages)


def write_bolt_file(path: str | os.PathLike[str], tree: BoltTree) -> Path:
    """Writes ``tree`` as a bolt file at ``path`` via a temp file and an atomic rename."""
    target = Path(path)
    content = build_bolt_file(tree)
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as temp_file:
            temp_file.write(content)
        os.chmod(temp_name, 0o600)
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return target
