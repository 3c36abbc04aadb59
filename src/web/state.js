// What the page checks of the ledger's state, following schemas/README.md §8 and §8.1
// and schemas/RULES.md §3: the canonical bytes of an object, its map key, the state
// map's leaf and node hashes (BLAKE3, vendored from @noble/hashes: WebCrypto has none),
// proofs of presence and of absence against a map root, and the signed state note that
// carries the root. Nothing here fetches. Every refusal is a VerifyError with the code
// the Rust verifier gives for the same input (tests/data/state/vectors.json).

import { blake3 } from "./vendor/noble-hashes/blake3.js";
import { VerifyError, b64decode, b64encode, concat, equalBytes, hex, operatorSignature, splitNote, utf8 } from "./verify.js";

const fail = (code, message) => {
  throw new VerifyError(code, message);
};

/** The empty subtree's hash, and the empty state's root. */
export const ZERO = new Uint8Array(32);
/** Bits in a map key: the most siblings a proof can have. */
export const KEY_BITS = 256;
const KEY_CONTEXT = utf8("lesson-ledger v1 state-map key");
export const STATE_NOTE_HEADER = "lesson-ledger/state-map/v1";
const STATE_NOTE_HEADER_OLD = "lesson-ledger/state-digest/v1";

const u32be = (n) => Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);

/** §8.1: the map key of object `id` of `table`, BLAKE3 derive-key over the framed names. */
export function mapKey(table, id) {
  const t = utf8(table);
  const i = utf8(id);
  return blake3(concat(u32be(t.length), t, u32be(i.length), i), { context: KEY_CONTEXT });
}

export const valueHash = (bytes) => blake3(bytes);
export const leafHash = (key, vh) => blake3(concat(Uint8Array.of(0), key, vh));
export const nodeHash = (left, right) => blake3(concat(Uint8Array.of(1), left, right));

/** Bit `j` of `key` (0 = the most significant bit of byte 0); 1 goes right. */
export const bit = (key, j) => (key[j >> 3] >> (7 - (j & 7))) & 1;

function samePrefix(a, b, depth) {
  for (let j = 0; j < depth; j++) if (bit(a, j) !== bit(b, j)) return false;
  return true;
}

// RULES.md §3: the canonical JSON of a value. Strings escape only `"`, `\` and
// U+0000..U+001F (RFC 8785 §3.2.2.2); integers are decimal. A value that has no
// canonical form (a fraction, a negative or unsafe integer, a lone surrogate) is
// refused: JSON.parse has already rounded an integer past 2^53, so its bytes are lost.
const SHORT_ESCAPES = { '"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function canonicalString(s) {
  if (!s.isWellFormed()) fail("state_object_malformed", "a string with a lone surrogate");
  // eslint-disable-next-line no-control-regex
  return `"${s.replace(/["\\\u0000-\u001f]/g, (c) => SHORT_ESCAPES[c] || `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)}"`;
}

const byUtf8 = (a, b) => {
  const x = utf8(a);
  const y = utf8(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
};

function canonicalText(v) {
  if (v === null) return "null";
  if (v === true) return "true";
  if (v === false) return "false";
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v) || v < 0 || Object.is(v, -0)) fail("state_object_malformed", `${v} is not an integer the page can read exactly`);
    return String(v);
  }
  if (typeof v === "string") return canonicalString(v);
  if (Array.isArray(v)) return `[${v.map(canonicalText).join(",")}]`;
  if (typeof v === "object") {
    return `{${Object.keys(v).sort(byUtf8).map((k) => `${canonicalString(k)}:${canonicalText(v[k])}`).join(",")}}`;
  }
  return fail("state_object_malformed", `no canonical JSON for a ${typeof v}`);
}

/** RULES.md §3: the value bytes of a JSON value (an object tagged with its kind). */
export const canonicalJSON = (value) => utf8(canonicalText(value));

const HEX64 = /^[0-9a-f]{64}$/;
function hash64(field, text) {
  if (typeof text !== "string" || !HEX64.test(text)) fail("proof_malformed", `${field} is not 64 lowercase hex digits`);
  return Uint8Array.from(text.match(/../g), (x) => parseInt(x, 16));
}

function exactMembers(value, names, what, optional = []) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) fail("proof_malformed", `${what} is not an object`);
  for (const k of Object.keys(value)) if (!names.includes(k) && !optional.includes(k)) fail("proof_malformed", `${what} has an unknown member ${k}`);
  for (const k of names) if (!(k in value)) fail("proof_malformed", `${what} has no ${k}`);
}

/**
 * §8.1 "JSON form": `{key, siblings, leaf}` to `{key, siblings: [32 bytes…], leaf: null |
 * {key, valueHash}}`. Refuses with `proof_malformed` (and `proof_too_deep`) as parsing does.
 */
export function parseStateProof(json) {
  // A missing `leaf` is null, as the Rust parser reads it (serde's Option).
  exactMembers(json, ["key", "siblings"], "the proof", ["leaf"]);
  let raw;
  try {
    raw = b64decode(json.siblings);
  } catch {
    fail("proof_malformed", "siblings are not standard base64");
  }
  // One encoding for one proof: base64 whose unused bits are set is refused.
  if (b64encode(raw) !== json.siblings) fail("proof_malformed", "siblings are not canonical base64");
  if (raw.length % 32 !== 0) fail("proof_malformed", `siblings are ${raw.length} bytes, not a multiple of 32`);
  if (raw.length / 32 > KEY_BITS) fail("proof_too_deep", `a proof of ${raw.length / 32} siblings (at most 256)`);
  const siblings = [];
  for (let at = 0; at < raw.length; at += 32) siblings.push(raw.subarray(at, at + 32));
  let leaf = null;
  if (json.leaf !== null && json.leaf !== undefined) {
    exactMembers(json.leaf, ["key", "value_hash"], "the proof's leaf");
    leaf = { key: hash64("leaf.key", json.leaf.key), valueHash: hash64("leaf.value_hash", json.leaf.value_hash) };
  }
  return { key: hash64("key", json.key), siblings, leaf };
}

/** The root a proof leads to (§8.1's recomputation). */
export function computedRoot(proof) {
  let h = proof.leaf ? leafHash(proof.leaf.key, proof.leaf.valueHash) : ZERO;
  for (let j = proof.siblings.length - 1; j >= 0; j--) {
    h = bit(proof.key, j) === 0 ? nodeHash(h, proof.siblings[j]) : nodeHash(proof.siblings[j], h);
  }
  return h;
}

/** The key is (table, id)'s, the depth possible, and the last sibling not empty. */
function checkShape(proof, table, id) {
  const expected = mapKey(table, id);
  if (!equalBytes(proof.key, expected)) fail("proof_key_mismatch", `the proof is for key ${hex(proof.key)}, not ${table}/${id}'s ${hex(expected)}`);
  if (proof.siblings.length > KEY_BITS) fail("proof_too_deep", "more siblings than a key has bits");
  // A tree never ends a path beside an empty subtree: such a proof was edited.
  const last = proof.siblings[proof.siblings.length - 1];
  if (last && equalBytes(last, ZERO)) fail("proof_malformed", "the last sibling is empty (not a proof a tree gives)");
}

function checkRoot(proof, root) {
  const found = computedRoot(proof);
  if (!equalBytes(found, root)) fail("proof_root_mismatch", `the proof leads to root ${hex(found)}, not the signed ${hex(root)}`);
}

/** Checks that object `id` of `table` holds exactly `valueBytes` in the state of map root `root`. */
export function verifyPresent(proof, root, table, id, valueBytes) {
  checkShape(proof, table, id);
  if (!proof.leaf || !equalBytes(proof.leaf.key, proof.key)) fail("proof_key_absent", `the proof shows ${table}/${id} absent`);
  const expected = valueHash(valueBytes);
  if (!equalBytes(proof.leaf.valueHash, expected)) {
    fail("proof_value_mismatch", `${table}/${id}: the proof's value hash is ${hex(proof.leaf.valueHash)}, the object served hashes to ${hex(expected)}`);
  }
  checkRoot(proof, root);
}

/** Checks that the state of map root `root` holds no object `id` of `table`. */
export function verifyAbsent(proof, root, table, id) {
  checkShape(proof, table, id);
  if (proof.leaf) {
    if (equalBytes(proof.leaf.key, proof.key)) fail("proof_absent_key_present", `the absence proof ends in ${table}/${id}'s own leaf`);
    if (!samePrefix(proof.leaf.key, proof.key, proof.siblings.length)) fail("proof_leaf_off_path", "the absence proof's leaf is not on the key's path");
  }
  checkRoot(proof, root);
}

/**
 * §8: verifies a state note under the operator's verifier key `vkey` and returns
 * `{origin, size, root}`: the signature first (`state_note_invalid`), then the body —
 * `state_note_old_format` for an LtHash digest note, `state_note_invalid` for any other
 * text than the canonical four lines.
 */
export async function verifyStateNote(text, vkey) {
  let note;
  try {
    note = splitNote(text);
    await operatorSignature(note, vkey);
  } catch (e) {
    fail("state_note_invalid", `the state note does not verify: ${e.message}`);
  }
  const lines = note.body.slice(0, -1).split("\n");
  if (lines[0] === STATE_NOTE_HEADER_OLD) fail("state_note_old_format", "a state digest note (the first format) commits to no state map root");
  if (lines.length !== 4 || lines[0] !== STATE_NOTE_HEADER) fail("state_note_invalid", "not a state note body");
  const [, origin, sizeText, rootText] = lines;
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) fail("state_note_invalid", "the size is not canonical decimal");
  let root;
  try {
    root = b64decode(rootText);
  } catch {
    fail("state_note_invalid", "the root is not base64");
  }
  if (root.length !== 32 || b64encode(root) !== rootText) fail("state_note_invalid", "the root is not canonical base64 of 32 bytes");
  return { origin, size: Number(sizeText), root };
}
