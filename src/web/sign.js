// Acting from the browser: the family's (or an institution's) Ed25519 key, kept in
// IndexedDB as a non-extractable WebCrypto key; the entry payload built in ONE function
// (entryPayload); the DSSE envelope signed here (PAE, schemas/README.md §1), posted, and
// its receipt verified (§6) and kept.

import { getJSON, postJSON } from "./api.js";
import {
  VerifyError, b64decode, b64encode, concat, encodeLeaf, equalBytes, hex, keyId, leafHash, pae, parseVkey, utf8,
  verifyCheckpoint, verifyCosignatures, verifyInclusion,
} from "./verify.js";

/** The payload type of ledger entries, format v2 (schemas/README.md §1, §10). */
export const PAYLOAD_TYPE = "application/vnd.lesson-ledger.entry.v2+json";

/** The field naming the object each kind the app signs is about (schemas/entries/). */
const SUBJECT_FIELD = {
  allocation_declined: "allocation",
  pledge_offered: "pledge",
  claim_preferences_set: "claim",
  lesson_proposed: "lesson",
  lesson_confirmed: "lesson",
  lesson_disputed: "lesson",
};

/**
 * The payload of an entry of `kind` about `subject` (the id of the object it is about),
 * as the ledger's rules read it (schemas/entries/). The one place that knows the entry
 * format: fields every entry carries are added here, from `info` (GET /v1/log), and
 * nowhere else. Format v2 (§10.1): `ledger` names the ledger the statement is for (its
 * genesis origin), so that a signed statement cannot be replayed into another ledger.
 * The entry id is `kind.subject` unless `extra` names one (a kind signed more than once
 * about the same object, as preferences that supersede each other).
 */
export function entryPayload(info, kind, subject, extra = {}) {
  const field = SUBJECT_FIELD[kind];
  if (!field) throw new VerifyError("unknown_kind", `the app does not sign ${kind}`);
  if (typeof info.origin !== "string" || !info.origin) throw new VerifyError("no_origin", "the log names no origin");
  const payload = { kind, id: `${kind}.${subject}`, ledger: info.origin, [field]: subject, ...extra };
  return { payloadType: PAYLOAD_TYPE, bytes: utf8(JSON.stringify(payload)) };
}

function db() {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open("lesson-ledger", 1);
    open.onupgradeneeded = () => {
      open.result.createObjectStore("keys", { keyPath: "name" });
      open.result.createObjectStore("receipts", { keyPath: "entry_id" });
    };
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
}

async function tx(store, mode, f) {
  const d = await db();
  return new Promise((resolve, reject) => {
    const t = d.transaction(store, mode);
    const r = f(t.objectStore(store));
    t.oncomplete = () => resolve(r.result);
    t.onerror = () => reject(t.error);
  });
}

/** The keys kept on this device. */
export const listKeys = () => tx("keys", "readonly", (s) => s.getAll());
export const listReceipts = () => tx("receipts", "readonly", (s) => s.getAll());

/** A C2SP verifier key (§4.1) for `name` and the raw public key. */
export async function vkeyOf(name, pub) {
  return `${name}+${hex(await keyId(name, 0x01, pub))}+${b64encode(concat(Uint8Array.of(1), pub))}`;
}

const pemOf = (der) => `-----BEGIN PRIVATE KEY-----\n${b64encode(der).match(/.{1,64}/g).join("\n")}\n-----END PRIVATE KEY-----\n`;

function derOf(pem) {
  const m = /-----BEGIN PRIVATE KEY-----([A-Za-z0-9+/=\s]+)-----END PRIVATE KEY-----/.exec(pem);
  if (!m) throw new VerifyError("malformed_key_file", "not a PKCS#8 PEM private key");
  return b64decode(m[1].replace(/\s+/g, ""));
}

// The RFC 8410 prefix of a version-1 PKCS#8 Ed25519 key: SEQUENCE { INTEGER 0,
// SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING (32 bytes) } }.
const PKCS8_V1_PREFIX = Uint8Array.of(0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20);

/**
 * The seed of an Ed25519 PKCS#8 key, version 1 (RFC 8410) or 2 (RFC 5958, with the
 * public key), and that public key if present. Browsers import only version 1, so the
 * key is re-encoded as that; a version-2 file's public key is checked against the seed
 * by the caller.
 */
function ed25519Pkcs8(der) {
  let at = 0;
  const tlv = () => {
    const tag = der[at];
    let len = der[at + 1];
    let head = 2;
    if (len === 0x81) {
      len = der[at + 2];
      head = 3;
    } else if (len > 0x80) throw new VerifyError("malformed_key_file", "key file too long");
    const value = der.subarray(at + head, at + head + len);
    if (value.length !== len) throw new VerifyError("malformed_key_file", "truncated key file");
    return { tag, value, end: at + head + len };
  };
  const outer = tlv();
  if (outer.tag !== 0x30 || outer.end !== der.length) throw new VerifyError("malformed_key_file", "not a PKCS#8 key");
  const body = outer.value;
  // INTEGER version (0 or 1), then the algorithm and the seed exactly as in version 1.
  const version = body[2];
  if (body[0] !== 0x02 || body[1] !== 0x01 || version > 1 || !equalBytes(body.subarray(3, 14), PKCS8_V1_PREFIX.subarray(5, 16))) {
    throw new VerifyError("malformed_key_file", "not an Ed25519 PKCS#8 key");
  }
  const seed = body.subarray(14, 46);
  let pub = null;
  der = body;
  at = 46;
  while (at < body.length) {
    const field = tlv();
    if (field.tag === 0x81 && field.value.length === 33 && field.value[0] === 0) pub = field.value.subarray(1);
    at = field.end;
  }
  if (seed.length !== 32 || (version === 1) !== (pub !== null)) throw new VerifyError("malformed_key_file", "a version-2 key file holds its public key");
  return { v1: concat(PKCS8_V1_PREFIX, seed), pub };
}

/**
 * Keeps a PKCS#8 key under `name`: imported once extractable only to read its public
 * half (JWK `x`), then again non-extractable; only the latter is stored.
 */
async function keep(name, file) {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) throw new VerifyError("malformed_name", "a key name is letters, digits, . _ -");
  const { v1: der, pub: stated } = ed25519Pkcs8(file);
  const open = await crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, true, ["sign"]);
  const jwk = await crypto.subtle.exportKey("jwk", open);
  const pub = b64decode(jwk.x.replace(/-/g, "+").replace(/_/g, "/").padEnd(44, "="));
  if (stated && !equalBytes(stated, pub)) throw new VerifyError("key_file_mismatch", "the key file's public key is not its private key's");
  const privateKey = await crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, false, ["sign"]);
  const vkey = await vkeyOf(name, pub);
  await tx("keys", "readwrite", (s) => s.put({ name, privateKey, vkey }));
  return vkey;
}

/** Creates a key on this device. Returns its vkey and the PEM backup to download once. */
export async function createKey(name) {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
  const der = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  const vkey = await keep(name, der);
  return { vkey, backup: pemOf(der) };
}

/** Imports the PKCS#8 PEM that `lesson-ledger keygen` writes (or a backup). */
export const importKey = (name, pem) => keep(name, derOf(pem));

/** Signs `payload` as a DSSE envelope with the stored key `name`. */
export async function signEnvelope(name, payload) {
  const stored = await tx("keys", "readonly", (s) => s.get(name));
  if (!stored) throw new VerifyError("no_key", `no key ${name} on this device`);
  const sig = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, stored.privateKey, pae(payload.payloadType, payload.bytes)));
  return {
    payloadType: payload.payloadType,
    payload: b64encode(payload.bytes),
    signatures: [{ keyid: stored.vkey, sig: b64encode(sig) }],
  };
}

/**
 * Posts `envelope`, then checks the receipt (§6) before keeping it: the checkpoint's
 * signature under the pinned operator key, the served entry is our envelope, its leaf
 * hashes to the receipt's leaf hash, and the inclusion proof leads to the signed root.
 */
export async function submit(trust, envelope) {
  const result = await postJSON("/v1/entries", envelope);
  const r = result.receipt;
  if (!r) throw new VerifyError(result.status || "no_receipt", result.error || "no receipt");
  const note = await verifyCheckpoint(r.checkpoint, trust.vkey, trust.info.origin);
  const served = await getJSON(`/v1/entries/${r.index}`);
  if (served.envelope.payload !== envelope.payload || served.envelope.payloadType !== envelope.payloadType) {
    throw new VerifyError("receipt_mismatch", "the log holds another statement at the receipt's index");
  }
  const hash = await leafHash(encodeLeaf(r.index, served.time_micros, served.envelope));
  if (!equalBytes(hash, b64decode(r.leaf_hash))) throw new VerifyError("receipt_mismatch", "the receipt's leaf hash is not our entry's");
  await verifyInclusion(r.index, note.size, hash, r.inclusion_proof.map(b64decode), note.root);
  await tx("receipts", "readwrite", (s) => s.put({ ...r, status: result.status, kept_at: Date.now() }));
  return r;
}

/**
 * An association cosigns the checkpoint this browser verified (C2SP tlog-cosignature,
 * schemas/README.md §4.4) with its stored key `name`, posts it (POST /v1/cosign), and
 * checks that the checkpoint served back carries the cosignature and verifies.
 */
export async function cosign(trust, name) {
  const stored = await tx("keys", "readonly", (s) => s.get(name));
  if (!stored) throw new VerifyError("no_key", `no key ${name} on this device`);
  const key = await parseVkey(stored.vkey, 0x04);
  const time = BigInt(Math.floor(Date.now() / 1000));
  const message = utf8(`cosignature/v1\ntime ${time}\n${trust.note.body}`);
  const sig = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, stored.privateKey, message));
  const stamp = new Uint8Array(8);
  new DataView(stamp.buffer).setBigUint64(0, time);
  const line = `\u2014 ${name} ${b64encode(concat(key.id, stamp, sig))}\n`;
  const answer = await postJSON("/v1/cosign", { party: name, size: trust.note.size, cosignature: line });
  const note = await verifyCheckpoint(answer.checkpoint, trust.vkey, trust.info.origin);
  const mine = (await verifyCosignatures(note, trust.operatorName, { [name]: stored.vkey })).find((c) => c.name === name);
  if (!mine || mine.state !== "verified") throw new VerifyError("cosignature_not_served", "the checkpoint served back lacks our cosignature");
  return note;
}
