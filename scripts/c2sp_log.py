#!/usr/bin/env python3
"""A small, independent C2SP tlog-tiles log, written from the C2SP documents (signed-note,
tlog-checkpoint, tlog-tiles) and RFC 6962, not from Lesson Ledger's Rust: the "any C2SP
log" that `lesson-ledger mirror --any-log` is tested against (tests/mirror_any.rs).

  c2sp_log.py keygen NAME SEEDFILE
      writes a fresh Ed25519 seed (hex) to SEEDFILE, prints the signed-note vkey
  c2sp_log.py build DIR --seed SEEDFILE --name NAME --origin ORIGIN --size N
                  [--rewrite I] [--corrupt-signature]
      writes the log of N entries to DIR: DIR/checkpoint, DIR/tile/<L>/<N>[.p/<W>],
      DIR/tile/entries/<N>[.p/<W>]. Entry i is synthetic opaque bytes of varying length
      (deterministic, so a larger N is the same log grown); --rewrite I replaces entry I
      (a fork); --corrupt-signature flips a bit of the checkpoint's signature.

Serve DIR with any static web server (python3 -m http.server, nginx).
"""

import argparse
import base64
import hashlib
import os
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

TILE_WIDTH = 256
TILE_HEIGHT = 8


def entry(i, rewrite):
    """Entry i: opaque bytes, 1 to 700 long, some of them binary."""
    if i == rewrite:
        return b"rewritten entry %d" % i
    head = b"opaque entry %d;" % i
    body = bytes((i * 7 + k) % 256 for k in range((i * 37) % 700))
    return head + body


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def tree_levels(leaves):
    """levels[k] = the hashes of the complete nodes at tree level k."""
    levels = [leaves]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([node_hash(below[j], below[j + 1]) for j in range(0, len(below) - 1, 2)])
    return levels


def root(hashes):
    """RFC 6962 MTH, recursively: split at the largest power of two below n."""
    n = len(hashes)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(root(hashes[:k]), root(hashes[k:]))


def index_path(n):
    """tlog-tiles: zero-padded 3-digit elements, all but the last prefixed with x."""
    parts = []
    while True:
        parts.append("%03d" % (n % 1000))
        n //= 1000
        if n == 0:
            break
    parts.reverse()
    return "/".join(["x" + p for p in parts[:-1]] + [parts[-1]])


def tile_path(kind, n, width):
    path = "tile/%s/%s" % (kind, index_path(n))
    return path if width == TILE_WIDTH else "%s.p/%d" % (path, width)


def write(dir_, rel, data):
    path = os.path.join(dir_, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def tiles(count):
    """(index, width) of the tiles over `count` nodes: full ones, then a partial one."""
    for n in range(count // TILE_WIDTH):
        yield n, TILE_WIDTH
    if count % TILE_WIDTH:
        yield count // TILE_WIDTH, count % TILE_WIDTH


def write_tiles(dir_, entries, levels):
    for n, width in tiles(len(entries)):
        bundle = b"".join(
            len(e).to_bytes(2, "big") + e for e in entries[n * TILE_WIDTH:n * TILE_WIDTH + width]
        )
        write(dir_, tile_path("entries", n, width), bundle)
    level = 0
    while level * TILE_HEIGHT < len(levels):
        nodes = levels[level * TILE_HEIGHT]
        for n, width in tiles(len(nodes)):
            write(dir_, tile_path(str(level), n, width),
                  b"".join(nodes[n * TILE_WIDTH:n * TILE_WIDTH + width]))
        level += 1


def key_id(name, public):
    return hashlib.sha256(name.encode() + b"\n" + b"\x01" + public).digest()[:4]


def load_key(seed_file):
    with open(seed_file) as f:
        private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(f.read().strip()))
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return private, public


def signed_note(text, name, private, public, corrupt):
    """signed-note: the text, a blank line, then "— name base64(key id || signature)"."""
    signature = bytearray(private.sign(text.encode()))
    if corrupt:
        signature[0] ^= 1
    blob = base64.b64encode(key_id(name, public) + bytes(signature)).decode()
    return "%s\n\u2014 %s %s\n" % (text, name, blob)


def build(args):
    entries = [entry(i, args.rewrite) for i in range(args.size)]
    levels = tree_levels([leaf_hash(e) for e in entries]) if entries else []
    write_tiles(args.dir, entries, levels)
    private, public = load_key(args.seed)
    head = root([leaf_hash(e) for e in entries])
    text = "%s\n%d\n%s\n" % (args.origin, args.size, base64.b64encode(head).decode())
    note = signed_note(text, args.name, private, public, args.corrupt_signature)
    write(args.dir, "checkpoint", note.encode())


def keygen(args):
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    with open(args.seedfile, "w") as f:
        f.write(seed.hex() + "\n")
    vkey = "%s+%s+%s" % (args.name, key_id(args.name, public).hex(),
                         base64.b64encode(b"\x01" + public).decode())
    print(vkey)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    k = sub.add_parser("keygen")
    k.add_argument("name")
    k.add_argument("seedfile")
    b = sub.add_parser("build")
    b.add_argument("dir")
    b.add_argument("--seed", required=True)
    b.add_argument("--name", required=True)
    b.add_argument("--origin", required=True)
    b.add_argument("--size", type=int, required=True)
    b.add_argument("--rewrite", type=int, default=-1)
    b.add_argument("--corrupt-signature", action="store_true")
    args = parser.parse_args()
    {"keygen": keygen, "build": build}[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
