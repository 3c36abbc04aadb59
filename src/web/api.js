// Reading the ledger's JSON API, and the trust the page keeps between visits: the
// operator key pinned on first use, the last verified checkpoint remembered, and a
// consistency proof demanded from it on every later visit (schemas/README.md §5).

import { canonicalJSON, parseStateProof, verifyAbsent, verifyPresent, verifyStateNote } from "./state.js";
import {
  VerifyError, b64decode, fingerprint, parseVkey, verifyCheckpoint, verifyConsistency,
  verifyCosignatures, verifyProvenEntry,
} from "./verify.js";

/** A request that failed (network, HTTP status or a problem document, kept as `problem`). */
export class FetchError extends Error {
  constructor(code, message, problem = null) {
    super(message);
    this.code = code;
    this.problem = problem;
  }
}

async function request(url, init) {
  let response;
  try {
    response = await fetch(url, init);
  } catch (e) {
    throw new FetchError("network", String(e));
  }
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    throw new FetchError(body && body.code ? body.code : `http_${response.status}`, body && body.detail ? body.detail : String(response.status), body);
  }
  return body;
}

export const getJSON = (url) => request(url, { headers: { accept: "application/json" } });
export const getText = (url) => request(url);
export const postJSON = (url, value) =>
  request(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(value) });

/**
 * A proven balance with every page of its entries: `answer` is the first page, its
 * objects as served (`{claim: {object, proof}, …}`, schemas/README.md §14), each
 * checked against the signed state note by `verifyProven` (verifyState); each figure is
 * also recomputed from the verified entries and compared with the object's.
 * The one place that follows a continuation: a response with `next` (a position in the
 * balance's entries) names the rest of its `entries`, asked for with `?from=`, each page
 * proven against its own checkpoint; pages are kept apart so that each is verified
 * against the checkpoint it came with. `pagesMax` bounds the pages read (a caller that
 * needs only the first entries, as a pledge's offer, reads one page).
 */
export async function getProven(url, pagesMax = 1000) {
  const first = await getJSON(url);
  const pages = [first];
  // `next` is the position of the next page's first entry (`?from=`), null on the last.
  for (let page = first, n = 1; page.next !== null && page.next !== undefined && n < pagesMax; n++) {
    if (!Number.isSafeInteger(page.next) || page.next <= 0) throw new FetchError("malformed_continuation", "a page position that is not a position");
    const next = new URL(url, location.origin);
    next.searchParams.set("from", String(page.next));
    page = await getJSON(next.pathname + next.search);
    pages.push(page);
  }
  return { answer: first, pages };
}

const store = {
  get(key) {
    try {
      return JSON.parse(localStorage.getItem(key));
    } catch {
      return null;
    }
  },
  set(key, value) {
    localStorage.setItem(key, JSON.stringify(value));
  },
};

/** Association verifier keys learned from entries the page verified (the audit). */
export const knownAssociations = () => store.get("ll.associations") || {};
export function rememberAssociation(name, vkey) {
  const known = knownAssociations();
  known[name] = vkey;
  store.set("ll.associations", known);
}

/**
 * Establishes what this visit may trust: the pinned operator key (trust on first use;
 * a different key later is an alarm), the checkpoint verified under it, its
 * cosignatures, and the consistency of this checkpoint with the one remembered from the
 * last visit (a rewritten history is an alarm). Never throws: failures are returned as
 * alarms and `ok: false`.
 */
export async function establishTrust() {
  const trust = { ok: false, alarms: [], firstUse: false, cosigs: [] };
  try {
    const info = await getJSON("/v1/log");
    trust.info = info;
    const pinKey = `ll.pin.${info.origin}`;
    const pinned = store.get(pinKey);
    if (!pinned) {
      await parseVkey(info.operator_vkey);
      store.set(pinKey, info.operator_vkey);
      trust.firstUse = true;
    } else if (pinned !== info.operator_vkey) {
      trust.vkey = pinned;
      trust.fingerprint = await fingerprint(pinned);
      trust.alarms.push({ code: "operator_key_changed", detail: info.operator_vkey });
      return trust;
    }
    trust.vkey = store.get(pinKey);
    trust.fingerprint = await fingerprint(trust.vkey);
    trust.operatorName = trust.vkey.split("+")[0];
    trust.note = await verifyCheckpoint(await getText("/checkpoint"), trust.vkey, info.origin);
    trust.cosigs = await verifyCosignatures(trust.note, trust.operatorName, knownAssociations());
    await advance(trust, trust.note);
    trust.ok = true;
  } catch (e) {
    trust.alarms.push({ code: e.code || "error", detail: e.message });
  }
  return trust;
}

/**
 * Demands a consistency proof from the remembered checkpoint to `note` (a verified
 * checkpoint of this log) and remembers `note` if it is newer. A smaller tree than
 * the one remembered, or a proof that fails, means the history was rewritten.
 */
export async function advance(trust, note) {
  const key = `ll.checkpoint.${trust.info.origin}`;
  const last = store.get(key);
  if (last && last.size > 0) {
    const lastRoot = b64decode(last.root);
    if (note.size < last.size) {
      await proveConsistent(note.size, note.root, last.size, lastRoot);
    } else {
      await proveConsistent(last.size, lastRoot, note.size, note.root);
    }
  }
  if (!last || note.size > last.size) store.set(key, { size: note.size, root: note.rootB64 });
}

/**
 * The genesis (entry 0) verified with its inclusion proof against the trusted
 * checkpoint: the window, validity and day, the subject and district lists, and the
 * associations' keys (each co-signed it), which are remembered to check cosignatures.
 */
export async function verifiedGenesis(trust) {
  const entry = await getJSON("/v1/entries/0");
  const proof = await getJSON(`/v1/proofs/inclusion?index=0&size=${trust.note.size}`);
  if (proof.leaf_hash !== entry.leaf_hash) throw new VerifyError("genesis_unverified", "genesis proof of another leaf");
  const genesis = await verifyProvenEntry({ ...entry, inclusion_proof: proof.proof }, trust.note);
  if (genesis.kind !== "genesis") throw new VerifyError("genesis_unverified", "entry 0 is not a genesis");
  for (const a of genesis.associations || []) rememberAssociation(a.party, a.key);
  return genesis;
}

/**
 * Checks that an older checkpoint of this log (`size`, `root`, its signature verified)
 * is a prefix of the one this visit trusts: a consistency proof from it, verified.
 */
export async function proveInTrusted(trust, size, root) {
  if (size > trust.note.size) throw new VerifyError("checkpoint_ahead", "a checkpoint past the one this visit trusts");
  await proveConsistent(size, root, trust.note.size, trust.note.root);
}

async function proveConsistent(size1, root1, size2, root2) {
  if (size1 === 0) return;
  let proof = [];
  if (size1 !== size2) {
    const p = await getJSON(`/v1/proofs/consistency?from=${size1}&to=${size2}`);
    if (p.from !== size1 || p.to !== size2) throw new VerifyError("bad_consistency_proof", "a proof of other sizes");
    proof = p.proof.map(b64decode);
  }
  try {
    await verifyConsistency(size1, size2, proof, root1, root2);
  } catch (e) {
    throw new VerifyError("history_rewritten", e.message);
  }
}

/** An entry's payload read without any check, to show what the server claims. */
function unverifiedPayload(entry) {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(b64decode(entry.envelope.payload)));
  } catch {
    return null;
  }
}

/**
 * Where an answer's objects live (schemas/README.md §14, RULES.md §4.4): the answer's
 * field → [table, tag, the object's id field]. The pool is the `meta` table's `pool`.
 */
const OBJECT_FIELDS = {
  claim: ["claim", "claim", "claim"], claims: ["claim", "claim", "claim"],
  pledge: ["pledge", "pledge", "pledge"],
  allocation: ["allocation", "allocation", "allocation"], allocations: ["allocation", "allocation", "allocation"],
  student: ["student", "student", "student"],
  lesson: ["lesson", "lesson", "lesson"], dispute: ["dispute", "dispute", "dispute"],
  pool: ["meta", "pool", null],
  liability: ["liability", "liability", "institution"], institution: ["party", "party", "party"],
};

/** The parts each balanced object's total is made of (schemas/README.md §14). */
const BALANCES = {
  claim: ["value", ["unreserved", "reserved", "consumed"]],
  pledge: ["capacity", ["available", "reserved", "delivered", "withdrawn"]],
  allocation: ["lessons", ["consumed", "pending", "remaining", "released"]],
};

const sameList = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * What a verified object must also satisfy (the client's checks, §14): its figures
 * add up; an allocation lists as many open lessons as it has pending.
 */
function checkFigures(table, object) {
  const balance = BALANCES[table];
  if (balance) {
    const [total, parts] = balance;
    if (parts.reduce((n, p) => n + object[p], 0) !== object[total]) throw new VerifyError("balance_unbalanced", `${table} ${object[table]}: the parts do not add up to the total`);
  }
  if (table === "allocation" && object.open_lessons.length !== object.pending) {
    throw new VerifyError("open_lessons_mismatch", `allocation ${object.allocation} lists ${object.open_lessons.length} open lessons but has ${object.pending} pending`);
  }
}

/** A student answer serves exactly the index's claims and the claims' open allocations, in order. */
function checkListed(answer) {
  if (!answer.student) return;
  const claims = answer.claims.map((c) => c.object);
  if (!sameList(answer.student.object.claims, claims.map((c) => c.claim))) throw new VerifyError("open_objects_mismatch", "the claims served are not the student's");
  if (!sameList(claims.flatMap((c) => c.allocations), answer.allocations.map((a) => a.object.allocation))) {
    throw new VerifyError("open_objects_mismatch", "the allocations served are not the claims' open allocations");
  }
}

/**
 * The state note of an answer (or an absence), checked: its checkpoint under the pinned
 * key and consistent with what this visit trusts, the note under the same key and of
 * the checkpoint's origin and size. Returns the note ({origin, size, root}).
 */
async function provenNote(trust, answer) {
  const cp = await verifyCheckpoint(answer.checkpoint, trust.vkey, trust.info.origin);
  await advance(trust, cp);
  const note = await verifyStateNote(answer.state_note, trust.vkey);
  if (note.origin !== cp.origin || note.size !== cp.size) {
    throw new VerifyError("state_note_size_mismatch", `the state note is of ${note.origin} at ${note.size}, the checkpoint of ${cp.origin} at ${cp.size}`);
  }
  return note;
}

/**
 * Checks a 404's `absence` (schemas/README.md §14): that it is about object `id` of
 * `table`, and its proof that the signed state holds no such object. Throws a
 * VerifyError naming the check that failed.
 */
export async function verifyAbsence(trust, absence, table, id) {
  if (!trust.ok) throw new VerifyError("untrusted", "the checkpoint could not be trusted");
  if (!absence || absence.table !== table || absence.id !== id) throw new VerifyError("state_object_mismatch", `not an absence proof of ${table} ${id}`);
  const note = await provenNote(trust, absence);
  verifyAbsent(parseStateProof(absence.proof), note.root, table, id);
}

/**
 * Checks the state evidence of a balance answer (schemas/README.md §14): its checkpoint
 * under the pinned key (consistent with what this visit trusts), the state note under
 * the same key and of the checkpoint's origin and size, then each object's state proof
 * against the note's root, its value being the canonical JSON of the object as served,
 * tagged. Returns {ok, verified: Set of "table/id" proven, failures}: an object whose
 * proof fails is left out of `verified` (its figures are shown unverified) and named.
 */
export async function verifyState(trust, answer) {
  const out = { ok: false, verified: new Set(), failures: [] };
  if (!trust.ok) return out;
  let note;
  try {
    note = await provenNote(trust, answer);
    checkListed(answer);
  } catch (e) {
    out.failures.push({ code: e.code || "error", detail: e.message });
    return out;
  }
  for (const [field, [table, tag, idField]] of Object.entries(OBJECT_FIELDS)) {
    const value = answer[field];
    for (const proven of Array.isArray(value) ? value : [value]) {
      if (proven === undefined || proven === null) continue;
      const id = idField ? proven.object[idField] : tag;
      try {
        verifyPresent(parseStateProof(proven.proof), note.root, table, String(id), canonicalJSON({ [tag]: proven.object }));
        checkFigures(table, proven.object);
        out.verified.add(`${table}/${id}`);
      } catch (e) {
        out.failures.push({ code: e.code || "error", detail: `${table} ${id}: ${e.message}` });
      }
    }
  }
  out.ok = out.failures.length === 0;
  return out;
}

/**
 * Verifies every page of a proven balance: the first page's state evidence
 * (verifyState: `state`), each page's checkpoint under the pinned key and consistent
 * with what this visit trusts, then each entry's leaf hash, inclusion proof and
 * signatures. Returns {ok, entries: [{index, time, payload, signers, verified}], state,
 * failures}. An entry that fails is kept with `verified: false` (its figures are shown
 * as the server claims them, marked unverified) and reported; `ok` is then false. `ok`
 * is about the entries; whether an object is proven is `state.verified`.
 */
export async function verifyProven(trust, proven) {
  const started = performance.now();
  const out = { ok: trust.ok, entries: [], failures: [], ms: 0 };
  if (!trust.ok) out.failures.push({ code: "untrusted", detail: "the checkpoint could not be trusted" });
  // A balance never fetched (`{pages: []}`) has no objects to prove.
  out.state = proven.answer ? await verifyState(trust, proven.answer) : { ok: false, verified: new Set(), failures: [] };
  out.failures.push(...out.state.failures);
  for (const page of proven.pages) {
    let note = null;
    if (trust.ok) {
      try {
        note = await verifyCheckpoint(page.checkpoint, trust.vkey, trust.info.origin);
        await advance(trust, note);
      } catch (e) {
        out.ok = false;
        note = null;
        out.failures.push({ code: e.code || "error", detail: e.message });
      }
    }
    for (const entry of page.entries) {
      let payload = null;
      if (note) {
        try {
          payload = await verifyProvenEntry(entry, note);
        } catch (e) {
          out.ok = false;
          out.failures.push({ code: e.code || "error", detail: e.message, index: entry.index });
        }
      }
      const verified = payload !== null;
      payload = payload || unverifiedPayload(entry);
      if (!payload) continue;
      out.entries.push({
        index: entry.index, time: entry.time_micros, payload, verified,
        signers: entry.envelope.signatures.map((s) => s.keyid.split("+")[0]),
      });
    }
  }
  out.ms = performance.now() - started;
  return out;
}

/** `proven(table, id)`: whether that object's state proof was verified in `v` (a verifyProven result). */
export const provenObject = (v, table, id) => !!(v && v.state && v.state.verified.has(`${table}/${id}`));
