"""Read a W&B run file (`run-*.wandb`) back as protobuf Records; wandb 0.31 ships no Python reader.

The file is a 7-byte header (":W&B", magic 0xBEE1, version) and then LevelDB-log framing: 32 KiB
blocks of chunks, each `crc32c (4) | length (2, little-endian) | type (1) | data`; a record is one
FULL chunk or FIRST, MIDDLE..., LAST; a block tail under 7 bytes is zero padding.
"""
import struct

from wandb.proto import wandb_internal_pb2

BLOCK, CHUNK_HEADER = 32 * 1024, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:4] == b":W&B" and data[4:6] == b"\xe1\xbe", f"{path} is not a W&B run file"
    pos, parts = CHUNK_HEADER, []
    while pos + CHUNK_HEADER <= len(data):
        if BLOCK - pos % BLOCK < CHUNK_HEADER:  # padding to the next block
            pos += BLOCK - pos % BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + CHUNK_HEADER])
        if kind == 0:  # zeros: preallocated, never written
            break
        parts.append(data[pos + CHUNK_HEADER:pos + CHUNK_HEADER + length])
        pos += CHUNK_HEADER + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(parts))
            parts = []
            yield record


def config_and_history(path):
    """(config {key: json text}, history rows [{key: json text}]) of a run file."""
    config, history = {}, []
    for record in read_records(path):
        kind = record.WhichOneof("record_type")
        if kind in ("run", "config"):  # the run record holds the config given to wandb.init
            items = record.run.config.update if kind == "run" else record.config.update
            config.update({item.key: item.value_json for item in items if item.key})
        elif kind == "history":
            history.append({item.key or "/".join(item.nested_key): item.value_json for item in record.history.item})
    return config, history
