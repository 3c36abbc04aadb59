// The state-proof vectors (tests/data/state/vectors.json, written and checked against
// the Rust verifier by tests/web.rs) run against the browser's verifier, src/web/state.js.
// `checkStateVectors` is self-contained so that it runs in Node (below: `node
// scripts/browser/state-vectors.mjs`, from scripts/browser-tests.sh) and in Chromium
// (scripts/browser/tests.mjs passes it to the page). Takes the vectors and the URL the
// modules are under; returns the number of cases and the disagreements.

export async function checkStateVectors({ vectors, base }) {
  const s = await import(`${base}state.js`);
  const v = await import(`${base}verify.js`);
  const fromHex = (h) => Uint8Array.from(h.match(/../g) || [], (x) => parseInt(x, 16));
  const text = (bytes) => new TextDecoder().decode(bytes);
  const wrong = [];
  let n = 0;
  for (const o of vectors.objects) {
    n++;
    const bytes = s.canonicalJSON(o.value);
    if (text(bytes) !== o.canonical) wrong.push(`canonical ${o.table}/${o.id}: ${text(bytes)}`);
    if (v.hex(s.valueHash(bytes)) !== o.value_hash) wrong.push(`value hash ${o.table}/${o.id}`);
    if (v.hex(s.mapKey(o.table, o.id)) !== o.map_key) wrong.push(`map key ${o.table}/${o.id}`);
  }
  const answer = async (f) => {
    try {
      const r = await f();
      return r === undefined ? "accept" : r;
    } catch (e) {
      return e.code || `threw ${e}`;
    }
  };
  for (const c of vectors.proofs) {
    n++;
    const got = await answer(() => {
      const proof = s.parseStateProof(c.proof);
      const root = fromHex(c.root);
      if (c.value === null) s.verifyAbsent(proof, root, c.table, c.id);
      else s.verifyPresent(proof, root, c.table, c.id, s.canonicalJSON(c.value));
    });
    if (got !== c.expect) wrong.push(`${c.description}: ${got}, Rust: ${c.expect}`);
  }
  const notes = vectors.state_notes;
  for (const c of notes.cases) {
    n++;
    const got = await answer(async () => {
      const note = await s.verifyStateNote(c.note, notes.vkey);
      const same = note.origin === notes.origin && note.size === notes.size && v.hex(note.root) === notes.root;
      return same ? "accept" : "another note";
    });
    if (got !== c.expect) wrong.push(`${c.description}: ${got}, Rust: ${c.expect}`);
  }
  return { cases: n, wrong };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { readFileSync } = await import("node:fs");
  const root = new URL("../../", import.meta.url);
  const vectors = JSON.parse(readFileSync(new URL("tests/data/state/vectors.json", root), "utf8"));
  const { cases, wrong } = await checkStateVectors({ vectors, base: new URL("src/web/", root).href });
  for (const w of wrong) console.log(`  disagrees with Rust: ${w}`);
  console.log(`state vectors in Node: ${cases - wrong.length} of ${cases} answered as the Rust verifier answers`);
  if (cases < 40 || wrong.length) process.exit(1);
}
