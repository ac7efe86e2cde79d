"""Read a WandB offline run's history from its ``run-ID.wandb`` file, for tests: the file is a LevelDB-style log
(blocks of 32 KiB, records split across them) of protobuf ``Record`` messages, after a 7-byte header."""

from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK = 32 * 1024
HEADER = struct.Struct("<4sHB")  # ":W&B", magic 0xBEE1, version
RECORD = struct.Struct("<IHB")  # crc32, length, type: 1 full, 2 first, 3 middle, 4 last


def records(path: Path) -> list[bytes]:
    data = Path(path).read_bytes()
    ident, _, _ = HEADER.unpack_from(data, 0)
    assert ident == b":W&B", ident
    out, pos, pending = [], HEADER.size, b""
    while pos + RECORD.size <= len(data):
        left = BLOCK - pos % BLOCK
        if left < RECORD.size:  # the rest of a block too small for a header is padding
            pos += left
            continue
        _, length, kind = RECORD.unpack_from(data, pos)
        if kind == 0 and length == 0:
            break
        chunk = data[pos + RECORD.size : pos + RECORD.size + length]
        pos += RECORD.size + length
        if kind == 1:
            out.append(chunk)
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            out.append(pending + chunk)
            pending = b""
    return out


def history(folder: Path) -> list[dict]:
    """Every history row of an offline run folder (``offline-run-...-ID``): key -> decoded JSON value."""
    from wandb.proto import wandb_internal_pb2 as pb

    (log,) = Path(folder).glob("run-*.wandb")
    rows = []
    for raw in records(log):
        record = pb.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history":
            rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                         for item in record.history.item})  # fmt: skip
    return rows
