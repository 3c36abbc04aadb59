// What the page checks itself, following schemas/README.md: base64, SHA-256 (WebCrypto),
// signed-note verifier keys (§4.1), checkpoints and their signatures (§4.3), tlog
// cosignatures (§4.4), DSSE PAE (§1), the binary leaf (§2), RFC 6962 hashing (§3) and
// the RFC 9162 inclusion and consistency proof verifiers (§5). Nothing here fetches.
//
// Every verifier throws a VerifyError naming what failed; none returns "nothing to
// check" for malformed input.

import { verifyStrict } from "./ed25519.js";

/** A failed check, with a stable code. */
export class VerifyError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

const fail = (code, message) => {
  throw new VerifyError(code, message);
};

const enc = new TextEncoder();
export const utf8 = (s) => enc.encode(s);

/** Standard base64 (RFC 4648 §4, padded) to bytes; anything else is refused. */
export function b64decode(text) {
  if (typeof text !== "string" || !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) {
    fail("malformed_base64", "not standard base64");
  }
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function b64encode(bytes) {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

export const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

// §3: RFC 6962 hashing with domain separation.
export const leafHash = (leaf) => sha256(concat(Uint8Array.of(0), leaf));
export const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

/** §1: PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body. */
export function pae(payloadType, body) {
  const type = utf8(payloadType);
  return concat(utf8(`DSSEv1 ${type.length} `), type, utf8(` ${body.length} `), body);
}

/** §4.1: a verifier key `name+hex(key_id)+base64(type || key)`, its key id checked. */
export async function parseVkey(text, wantType = 0x01) {
  // name + hex id + base64 key; the base64 may itself hold '+', the name may not.
  const m = typeof text === "string" ? /^([^+\s]+)\+([0-9a-f]{8})\+(\S+)$/.exec(text) : null;
  if (!m) fail("malformed_vkey", "not a verifier key");
  const [, name, idHex, keyB64] = m;
  const raw = b64decode(keyB64);
  if (raw.length !== 33 || raw[0] !== 0x01) fail("malformed_vkey", "not an Ed25519 verifier key");
  const pub = raw.subarray(1);
  const id = await keyId(name, 0x01, pub);
  if (hex(id) !== idHex) fail("malformed_vkey", "the key id does not match the key");
  return { name, pub, id: wantType === 0x01 ? id : await keyId(name, wantType, pub) };
}

/** key_id = SHA-256(name || 0x0A || type || public_key)[0..4]. */
export async function keyId(name, type, pub) {
  return (await sha256(concat(utf8(name), Uint8Array.of(0x0a, type), pub))).subarray(0, 4);
}

/** SHA-256 of the verifier key text, shown to people as the key's fingerprint. */
export async function fingerprint(vkey) {
  const h = hex(await sha256(utf8(vkey)));
  return h.slice(0, 32).match(/.{4}/g).join(" ");
}

/** §4.2: splits a signed note into its body (ending in "\n") and its signature lines. */
export function splitNote(text) {
  const cut = typeof text === "string" ? text.indexOf("\n\n") : -1;
  if (cut < 0) fail("malformed_checkpoint", "no blank line after the body");
  const body = text.slice(0, cut + 1);
  const sigs = [];
  for (const line of text.slice(cut + 2).split("\n")) {
    if (line === "") continue;
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!m) fail("malformed_checkpoint", "bad signature line");
    sigs.push({ name: m[1], bytes: b64decode(m[2]) });
  }
  return { body, sigs };
}

/** §4.3: a checkpoint body's three lines, parsed, with its signature lines. */
export function parseNote(text) {
  const { body, sigs } = splitNote(text);
  const lines = body.slice(0, -1).split("\n");
  if (lines.length !== 3) fail("malformed_checkpoint", "a checkpoint body has three lines");
  const [origin, sizeText, rootB64] = lines;
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText)) fail("malformed_checkpoint", "bad tree size");
  const root = b64decode(rootB64);
  if (root.length !== 32) fail("malformed_checkpoint", "the root is not 32 bytes");
  return { body, origin, size: Number(sizeText), root, rootB64, sigs };
}

/** §4.3: checks that the operator key `vkey` signed the split note `note` (strictly). */
export async function operatorSignature(note, vkey) {
  const key = await parseVkey(vkey);
  const line = note.sigs.find((s) => s.name === key.name && s.bytes.length === 68 && equalBytes(s.bytes.subarray(0, 4), key.id));
  if (!line) fail("checkpoint_unsigned", "no signature by the operator key");
  if (!(await verifyStrict(key.pub, utf8(note.body), line.bytes.subarray(4)))) {
    fail("bad_checkpoint_signature", "the operator's signature is invalid");
  }
}

/**
 * Verifies a checkpoint's operator signature (§4.3) under `vkey` and its origin.
 * Returns the parsed note. Cosignatures are checked apart (verifyCosignatures).
 */
export async function verifyCheckpoint(text, vkey, origin) {
  const note = parseNote(text);
  if (note.origin !== origin) fail("wrong_origin", `checkpoint of ${note.origin}, not ${origin}`);
  await operatorSignature(note, vkey);
  return note;
}

/**
 * §4.4: checks the cosignature lines of `note` by the associations whose registered
 * (type 0x01) vkeys are in `known`. Returns one result per cosignature line that is
 * not the operator's: {name, time, state: "verified" | "invalid" | "unknown_key"}.
 */
export async function verifyCosignatures(note, operatorName, known) {
  const out = [];
  for (const line of note.sigs) {
    if (line.name === operatorName && line.bytes.length === 68) continue;
    if (line.bytes.length !== 4 + 8 + 64) {
      out.push({ name: line.name, time: null, state: "invalid" });
      continue;
    }
    const view = new DataView(line.bytes.buffer, line.bytes.byteOffset);
    const time = view.getBigUint64(4);
    const vkey = known[line.name];
    if (!vkey) {
      out.push({ name: line.name, time, state: "unknown_key" });
      continue;
    }
    const key = await parseVkey(vkey, 0x04);
    const msg = utf8(`cosignature/v1\ntime ${time}\n${note.body}`);
    const ok = equalBytes(line.bytes.subarray(0, 4), key.id) && (await verifyStrict(key.pub, msg, line.bytes.subarray(12)));
    out.push({ name: line.name, time, state: ok ? "verified" : "invalid" });
  }
  return out;
}

/** §2: the binary leaf of an entry served with its index, ledger time and envelope. */
export function encodeLeaf(index, timeMicros, envelope) {
  const type = utf8(envelope.payloadType);
  const payload = b64decode(envelope.payload);
  const sigs = envelope.signatures.map((s) => ({ keyid: utf8(s.keyid), sig: b64decode(s.sig) }));
  if (type.length < 1 || type.length > 0xffff) fail("malformed_entry", "payload type length");
  if (sigs.length < 1 || sigs.length > 8) fail("malformed_entry", "signature count");
  const size = 1 + 8 + 8 + 2 + type.length + 4 + payload.length + 1 + sigs.reduce((n, s) => n + 2 + s.keyid.length + 64, 0);
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  let at = 0;
  v.setUint8(at, 1);
  v.setBigUint64(at + 1, BigInt(index));
  v.setBigUint64(at + 9, BigInt(timeMicros));
  v.setUint16(at + 17, type.length);
  at = 19;
  out.set(type, at);
  at += type.length;
  v.setUint32(at, payload.length);
  out.set(payload, at + 4);
  at += 4 + payload.length;
  v.setUint8(at++, sigs.length);
  for (const s of sigs) {
    if (s.sig.length !== 64 || s.keyid.length < 1 || s.keyid.length > 0xffff) fail("malformed_entry", "signature");
    v.setUint16(at, s.keyid.length);
    out.set(s.keyid, at + 2);
    at += 2 + s.keyid.length;
    out.set(s.sig, at);
    at += 64;
  }
  return out;
}

/** Checks every DSSE signature of an envelope strictly (§1); returns the signer names. */
export async function verifyEnvelope(envelope) {
  const message = pae(envelope.payloadType, b64decode(envelope.payload));
  const names = [];
  const seen = new Set();
  for (const s of envelope.signatures) {
    if (seen.has(s.keyid)) fail("duplicate_signature", "a key signed twice");
    seen.add(s.keyid);
    const key = await parseVkey(s.keyid);
    if (!(await verifyStrict(key.pub, message, b64decode(s.sig)))) fail("bad_signature", `bad signature by ${key.name}`);
    names.push(key.name);
  }
  return names;
}

/** Every value a proof verifier reads is a SHA-256 hash: 32 bytes, or refused. */
function hashes32(...values) {
  for (const h of values.flat()) {
    if (!(h instanceof Uint8Array) || h.length !== 32) fail("malformed_hash", "a hash is not 32 bytes");
  }
}

/** RFC 9162 §2.1.3.2: verifies an inclusion proof of `leaf` at `index` in a tree of `size` with `root`. */
export async function verifyInclusion(index, size, leaf, proof, root) {
  hashes32(leaf, root, proof);
  if (index >= size) fail("bad_inclusion_proof", "index out of range");
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) fail("bad_inclusion_proof", "proof too long");
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0 || !equalBytes(r, root)) fail("bad_inclusion_proof", "the proof does not lead to the signed root");
}

/** RFC 9162 §2.1.4.2: verifies a consistency proof between two signed roots. */
export async function verifyConsistency(size1, size2, proof, root1, root2) {
  // §5: size1 = 0 is refused (every tree extends the empty one; nothing to prove).
  if (size1 === 0) fail("bad_consistency_proof", "a proof from the empty tree proves nothing");
  if (size1 === size2) {
    if (proof.length !== 0 || !equalBytes(root1, root2)) fail("bad_consistency_proof", "same size, different roots");
    return;
  }
  if (size1 > size2) fail("bad_consistency_proof", "sizes out of order");
  hashes32(root1, root2, proof);
  // 1. If consistency_path is an empty array, stop and fail the proof verification.
  if (proof.length === 0) fail("bad_consistency_proof", "empty proof");
  // 2. If first is an exact power of 2, then prepend first_hash to the consistency_path.
  const path = (size1 & (size1 - 1)) === 0 ? [root1, ...proof] : proof;
  // 3.-4. fn = first - 1, sn = second - 1; shift while LSB(fn) is set.
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  // 5. Set both fr and sr to the first value in the consistency_path array.
  let fr = path[0];
  let sr = path[0];
  // 6. For each subsequent value c in the consistency_path array:
  for (const c of path.slice(1)) {
    if (sn === 0) fail("bad_consistency_proof", "proof too long");
    if (fn % 2 === 1 || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  // 7. fr equals first_hash, sr equals second_hash, and sn is 0.
  if (sn !== 0 || !equalBytes(fr, root1) || !equalBytes(sr, root2)) {
    fail("bad_consistency_proof", "the history was rewritten: the proof does not join the two signed roots");
  }
}

/** Verifies one proven entry (balances.rs ProvenEntry) against a verified checkpoint. */
export async function verifyProvenEntry(entry, note) {
  const leaf = encodeLeaf(entry.index, entry.time_micros, entry.envelope);
  const hash = await leafHash(leaf);
  if (hex(hash) !== hex(b64decode(entry.leaf_hash))) fail("leaf_hash_mismatch", `entry ${entry.index}: the leaf hash is not the hash of its leaf`);
  await verifyInclusion(entry.index, note.size, hash, entry.inclusion_proof.map(b64decode), note.root);
  await verifyEnvelope(entry.envelope);
  return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(b64decode(entry.envelope.payload)));
}
