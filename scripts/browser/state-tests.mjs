// The browser tests of the state proofs (run by scripts/browser/tests.mjs): the
// browser's verifier on the Rust verifier's vectors, and the figures of the family,
// pool and institution pages backed by state proofs that an altered object or proof
// turns unverified, with an alarm.

import fs from "node:fs";
import path from "node:path";
import { DEMO, FAMILY, FIXTURE, PROXY, ROOT, assert, getJSON, page, state, test, verifiedStates, visit } from "./harness.mjs";
import { checkStateVectors } from "./state-vectors.mjs";

await test("the_browser_state_verifier_answers_the_rust_vectors_in_chromium", async () => {
  const vectors = JSON.parse(fs.readFileSync(path.join(ROOT, "tests/data/state/vectors.json"), "utf8"));
  const { context, p } = await page();
  state.backend = DEMO;
  await visit(p, `${PROXY}/`);
  const { cases, wrong } = await p.evaluate(checkStateVectors, { vectors, base: "/web/" });
  console.log(`  ${cases} state-map vectors (canonical bytes, map keys, proofs, state notes)`);
  assert(cases >= 40 && wrong.length === 0, wrong.join("; "));
  await context.close();
});

/** Visits the family page with `alter` applied to its student answer; returns the alarms and the claim figures' states. */
async function alteredFamily(alter) {
  state.backend = DEMO;
  state.alter = (url, data) => (url.startsWith(`/v1/students/${FAMILY}`) ? Buffer.from(JSON.stringify(alter(JSON.parse(data)))) : null);
  const { context, p } = await page();
  await visit(p, `${PROXY}/students/${FAMILY}`);
  state.alter = null;
  const alarms = await p.$$eval("[role=alert]", (els) => els.map((e) => e.dataset.alarm));
  const visible = alarms.length > 0 && (await p.isVisible("[role=alert]"));
  const claim = (await getJSON(`${DEMO}/v1/students/${FAMILY}`)).claims[0].object.claim;
  const states = await p.$$eval(`tr[data-claim="${claim}"] [data-verified]`, (els) => els.map((e) => e.dataset.verified));
  await context.close();
  return { alarms, visible, states };
}

await test("an_object_altered_in_flight_with_its_proof_left_turns_its_figures_false_with_an_alarm", async () => {
  // One fen moved from unreserved to made good: the claim still adds up, the entries
  // are untouched, only the state proof can tell.
  const r = await alteredFamily((body) => {
    body.claims[0].object.consumed += 1;
    body.claims[0].object.unreserved -= 1;
    return body;
  });
  assert(r.alarms.includes("proof_value_mismatch") && r.visible, `alarm shown: ${r.alarms}`);
  assert(r.states.length > 0 && r.states.every((s) => s === "false"), `claim figures false: ${r.states}`);
});

await test("a_state_proof_altered_in_flight_turns_its_figures_false_with_an_alarm", async () => {
  const r = await alteredFamily((body) => {
    const raw = Buffer.from(body.claims[0].proof.siblings, "base64");
    raw[3] ^= 1;
    body.claims[0].proof.siblings = raw.toString("base64");
    return body;
  });
  assert(r.alarms.includes("proof_root_mismatch") && r.visible, `alarm shown: ${r.alarms}`);
  assert(r.states.length > 0 && r.states.every((s) => s === "false"), `claim figures false: ${r.states}`);
});

await test("the_pool_and_a_liability_are_verified_by_their_state_proofs", async () => {
  state.alter = null;
  const { context, p } = await page();
  state.backend = DEMO;
  await visit(p, `${PROXY}/pool`);
  const pool = await verifiedStates(p, ".cards");
  assert(pool.length === 4 && pool.every((s) => s.endsWith("=true")), `pool figures: ${pool}`);
  state.backend = FIXTURE;
  await visit(p, `${PROXY}/institutions/inst-0c105e`);
  const liability = await verifiedStates(p, ".cards");
  assert(liability.length === 4 && liability.every((s) => s.endsWith("=true")), `liability figures: ${liability}`);
  // The pool object altered in flight: its figures false, with an alarm.
  state.backend = DEMO;
  state.alter = (url, data) => {
    if (url !== "/v1/pool") return null;
    const body = JSON.parse(data);
    body.pool.object.delivered += 100;
    body.pool.object.available -= 100;
    return Buffer.from(JSON.stringify(body));
  };
  await visit(p, `${PROXY}/pool`);
  state.alter = null;
  const altered = await verifiedStates(p, ".cards");
  const alarms = await p.$$eval("[role=alert]", (els) => els.map((e) => e.dataset.alarm));
  assert(altered.every((s) => s.endsWith("=false")) && alarms.includes("proof_value_mismatch"), `altered pool: ${altered} ${alarms}`);
  await context.close();
});

await test("an_unknown_student_is_shown_absent_by_its_absence_proof", async () => {
  state.backend = DEMO;
  state.alter = null;
  const { context, p } = await page();
  await visit(p, `${PROXY}/students/stu-0ff0ff`);
  assert((await p.$eval("[data-figure=absent]", (e) => e.dataset.verified)) === "true", "absence proven");
  // The proof altered in flight: an absence the page cannot prove, with an alarm.
  state.alter = (url, data) => {
    if (!url.startsWith("/v1/students/")) return null;
    const body = JSON.parse(data);
    const raw = Buffer.from(body.absence.proof.siblings, "base64");
    raw[0] ^= 1;
    body.absence.proof.siblings = raw.toString("base64");
    return Buffer.from(JSON.stringify(body));
  };
  await visit(p, `${PROXY}/students/stu-0ff0ff`);
  state.alter = null;
  const alarms = await p.$$eval("[role=alert]", (els) => els.map((e) => e.dataset.alarm));
  assert((await p.$eval("[data-figure=absent]", (e) => e.dataset.verified)) === "false" && alarms.includes("proof_root_mismatch"), `alarms: ${alarms}`);
  await context.close();
});

