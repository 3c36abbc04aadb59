// The in-browser audit (a module Web Worker): reads the whole log from the C2SP tlog
// tiles (https://c2sp.org/tlog-tiles), checks every leaf (§2: version, index, time
// order), every DSSE signature strictly, recomputes the RFC 6962 root and compares it
// with the checkpoint verified under the pinned operator key, demands a consistency
// proof from the last audited checkpoint, and sums what the pool and district pages
// draw from the entries it verified. Posts {progress} messages, then {done} or {error}.

import {
  VerifyError, b64decode, leafHash, nodeHash, pae, parseVkey, verifyCheckpoint, verifyConsistency,
} from "./verify.js";
import { verifyStrict } from "./ed25519.js";

const dec = new TextDecoder("utf-8", { fatal: true });

/** N as the spec's path: zero-padded 3-digit elements, all but the last prefixed x. */
export function tilePath(n) {
  const parts = [];
  do {
    parts.unshift(String(n % 1000).padStart(3, "0"));
    n = Math.floor(n / 1000);
  } while (n > 0);
  return parts.map((p, i) => (i < parts.length - 1 ? `x${p}` : p)).join("/");
}

/** Parses one leaf (§2), refusing anything not canonical. */
function parseLeaf(bytes, wantIndex, lastTime) {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint8(0) !== 1) throw new VerifyError("bad_leaf", `leaf ${wantIndex}: version`);
  const index = Number(v.getBigUint64(1));
  const time = v.getBigUint64(9);
  if (index !== wantIndex) throw new VerifyError("bad_leaf", `leaf ${wantIndex}: index ${index}`);
  if (lastTime !== null && time <= lastTime) throw new VerifyError("bad_leaf", `leaf ${wantIndex}: time out of order`);
  let at = 17;
  const tl = v.getUint16(at);
  const type = dec.decode(bytes.subarray(at + 2, at + 2 + tl));
  at += 2 + tl;
  const pl = v.getUint32(at);
  const payload = bytes.subarray(at + 4, at + 4 + pl);
  at += 4 + pl;
  const count = v.getUint8(at++);
  if (count < 1 || count > 8) throw new VerifyError("bad_leaf", `leaf ${wantIndex}: signature count`);
  const sigs = [];
  for (let i = 0; i < count; i++) {
    const kl = v.getUint16(at);
    const keyid = dec.decode(bytes.subarray(at + 2, at + 2 + kl));
    sigs.push({ keyid, sig: bytes.subarray(at + 2 + kl, at + 2 + kl + 64) });
    at += 2 + kl + 64;
  }
  if (at !== bytes.length) throw new VerifyError("bad_leaf", `leaf ${wantIndex}: trailing bytes`);
  return { index, time, type, payload, sigs };
}

async function fetchBundle(n, width) {
  const path = `/tile/entries/${tilePath(n)}${width < 256 ? `.p/${width}` : ""}`;
  const r = await fetch(path);
  if (!r.ok) throw new VerifyError("tile_unavailable", `${path}: ${r.status}`);
  const bytes = new Uint8Array(await r.arrayBuffer());
  const leaves = [];
  for (let at = 0; at < bytes.length;) {
    const len = (bytes[at] << 8) | bytes[at + 1];
    leaves.push(bytes.subarray(at + 2, at + 2 + len));
    at += 2 + len;
  }
  if (leaves.length !== width) throw new VerifyError("bad_tile", `${path}: ${leaves.length} leaves, not ${width}`);
  return leaves;
}

/** Sums the pool's figures from verified payloads (pledges approved, lessons delivered). */
function aggregator() {
  const pledges = new Map();
  const allocs = new Map();
  const claims = new Map();
  const agg = { bySubject: {}, byDistrict: {}, byInstitution: {}, timeline: [], associations: {} };
  const add = (table, key, field, v) => {
    const row = (table[key] ||= { pledged: 0, delivered: 0, owed: 0, madeGood: 0 });
    row[field] += v;
  };
  const deliver = (allocation) => {
    const a = allocs.get(allocation);
    const p = a && pledges.get(a.pledge);
    const c = a && claims.get(a.claim);
    if (!p) return;
    add(agg.bySubject, p.subject, "delivered", p.vpl);
    if (c) add(agg.byDistrict, c.district, "madeGood", p.vpl);
    if (c) add(agg.byInstitution, c.institution, "madeGood", p.vpl);
    agg.delivered += p.vpl;
  };
  agg.pledged = 0;
  agg.delivered = 0;
  agg.owed = 0;
  const lessons = new Map();
  const disputes = new Map();
  agg.visit = (p, index) => {
    switch (p.kind) {
      // The associations are the genesis's (each co-signed it); none is registered later.
      case "genesis": for (const a of p.associations) agg.associations[a.party] = a.key; break;
      case "claim_recorded":
        claims.set(p.claim, { district: p.district, institution: p.institution });
        add(agg.byDistrict, p.district, "owed", p.lessons * p.price_per_lesson_fen);
        add(agg.byInstitution, p.institution, "owed", p.lessons * p.price_per_lesson_fen);
        agg.owed += p.lessons * p.price_per_lesson_fen;
        break;
      case "pledge_offered": pledges.set(p.pledge, { subject: p.subject, district: p.district || "online", vpl: p.value_per_lesson_fen, value: p.seats * p.lessons_per_seat * p.value_per_lesson_fen }); break;
      case "pledge_approved": { const q = pledges.get(p.pledge); if (q) { add(agg.bySubject, q.subject, "pledged", q.value); agg.pledged += q.value; } break; }
      case "allocation_made": allocs.set(p.allocation, { pledge: p.pledge, claim: p.claim }); break;
      case "lesson_proposed": lessons.set(p.lesson, p.allocation); break;
      case "lesson_consumed": deliver(p.allocation); break;
      case "lesson_confirmed": case "lesson_deemed_confirmed": deliver(lessons.get(p.lesson)); break;
      case "lesson_disputed": disputes.set(p.dispute, p.lesson); break;
      // A rejected dispute lets the lesson stand; an upheld one voids it.
      case "dispute_resolved": if (p.outcome === "rejected") deliver(lessons.get(disputes.get(p.dispute))); break;
      default: break;
    }
    if (index % 64 === 0) agg.timeline.push([index, agg.pledged, agg.delivered]);
  };
  return agg;
}

async function audit({ vkey, origin, last, summarize }) {
  const started = performance.now();
  const note = await verifyCheckpoint(await (await fetch("/checkpoint")).text(), vkey, origin);
  const keys = new Map();
  const stack = [];
  const agg = summarize ? aggregator() : null;
  let lastTime = null;
  let sigCount = 0;
  let sigMs = 0;
  for (let n = 0; n * 256 < note.size; n++) {
    const width = Math.min(256, note.size - n * 256);
    const leaves = await fetchBundle(n, width);
    const parsed = leaves.map((bytes, i) => {
      const leaf = parseLeaf(bytes, n * 256 + i, lastTime);
      lastTime = leaf.time;
      return { bytes, leaf };
    });
    const t0 = performance.now();
    const checks = [];
    for (const { leaf } of parsed) {
      const message = pae(leaf.type, leaf.payload);
      for (const s of leaf.sigs) {
        let key = keys.get(s.keyid);
        if (!key) {
          key = parseVkey(s.keyid);
          keys.set(s.keyid, key);
        }
        checks.push(key.then((k) => verifyStrict(k.pub, message, s.sig)).then((ok) => {
          if (!ok) throw new VerifyError("bad_signature", `entry ${leaf.index}: bad signature by ${s.keyid.split("+")[0]}`);
        }));
      }
    }
    await Promise.all(checks);
    sigCount += checks.length;
    sigMs += performance.now() - t0;
    const hashes = await Promise.all(parsed.map(({ bytes }) => leafHash(bytes)));
    for (let i = 0; i < hashes.length; i++) {
      let h = hashes[i];
      for (let k = n * 256 + i; k & 1; k >>= 1) h = await nodeHash(stack.pop(), h);
      stack.push(h);
      if (agg && parsed[i].leaf.type.startsWith("application/vnd.lesson-ledger.entry")) {
        agg.visit(JSON.parse(dec.decode(parsed[i].leaf.payload)), parsed[i].leaf.index);
      }
    }
    postMessage({ progress: { done: n * 256 + width, size: note.size } });
  }
  let root = stack.pop() || new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array()));
  while (stack.length) root = await nodeHash(stack.pop(), root);
  if (root.some((b, i) => b !== note.root[i])) throw new VerifyError("root_mismatch", "the recomputed root is not the signed root");
  if (last && last.size > 0 && last.size <= note.size) {
    const proof = last.size === note.size ? [] : (await (await fetch(`/v1/proofs/consistency?from=${last.size}&to=${note.size}`)).json()).proof.map(b64decode);
    await verifyConsistency(last.size, note.size, proof, b64decode(last.root), note.root);
  } else if (last && last.size > note.size) {
    throw new VerifyError("history_rewritten", "the log is smaller than at the last audit");
  }
  if (agg) delete agg.visit;
  return {
    size: note.size, root: note.rootB64, signatures: sigCount, seconds: (performance.now() - started) / 1000,
    sigsPerSec: Math.round(sigCount / Math.max(sigMs / 1000, 1e-3)), summary: agg,
  };
}

onmessage = (ev) => {
  audit(ev.data).then(
    (done) => postMessage({ done }),
    (e) => postMessage({ error: { code: e.code || "error", message: e.message } }),
  );
};

