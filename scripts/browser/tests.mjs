// End-to-end tests of the web app in Debian's headless Chromium (playwright-core, no
// browser download), against real servers: the demo's ledger (DEMO_URL) and the
// fixture's (FIXTURE_URL, FORK_A_URL, FORK_B_URL; scripts/browser/fixture.sh), each
// reached through a test-only proxy that can alter responses in flight or switch the
// backend (a rewritten history) while the page's origin stays the same.
//
// Run by scripts/browser-tests.sh; prints each test and the targets measured. The proxy,
// the browser and the helpers are in harness.mjs; the state proofs' tests in
// state-tests.mjs (run in their place below).

import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import {
  DEMO, FAMILY, FIXTURE, FORK_A, FORK_B, KEY_FILE, PROXY, ROOT, assert, figureText, finish, getJSON, page, state,
  test, verifiedStates, visit, yuan,
} from "./harness.mjs";

await test("the_browser_verifier_answers_the_strict_vectors_as_verify_strict_does", async () => {
  const vectors = JSON.parse(fs.readFileSync(path.join(ROOT, "tests/data/ed25519/strict.json"), "utf8")).vectors;
  assert(vectors.length >= 20, "vectors present");
  const { context, p } = await page();
  state.backend = DEMO;
  await visit(p, `${PROXY}/`);
  const got = await p.evaluate(async (vs) => {
    const { verifyStrict } = await import("/web/ed25519.js");
    const bytes = (h) => new Uint8Array(h.match(/../g)?.map((x) => parseInt(x, 16)) ?? []);
    const out = [];
    for (const v of vs) out.push((await verifyStrict(bytes(v.public), bytes(v.message), bytes(v.signature))) ? "accept" : "reject");
    return out;
  }, vectors);
  vectors.forEach((v, i) => assert(got[i] === v.expect, `${v.description}: ${got[i]}`));
  // Plain WebCrypto accepts what strict refuses (the reason for the added checks).
  const lax = await p.evaluate(async (v) => {
    const bytes = (h) => new Uint8Array(h.match(/../g)?.map((x) => parseInt(x, 16)) ?? []);
    const key = await crypto.subtle.importKey("raw", bytes(v.public), { name: "Ed25519" }, false, ["verify"]);
    return crypto.subtle.verify({ name: "Ed25519" }, key, bytes(v.signature), bytes(v.message));
  }, vectors.find((v) => v.description.startsWith("small-order public key 0")));
  console.log(`  WebCrypto alone on the identity key with R = identity, S = 0: ${lax ? "accepts" : "refuses"}`);
  await context.close();
});

await test("the_browser_merkle_verifiers_accept_exactly_the_rfc6962_happy_paths", async () => {
  const base = path.join(ROOT, "tests/data/rfc6962");
  const load = (kind) => fs.readdirSync(path.join(base, kind), { recursive: true }).filter((f) => f.endsWith(".json"))
    .map((f) => ({ name: `${kind}/${f}`, ...JSON.parse(fs.readFileSync(path.join(base, kind, f), "utf8")) }));
  const cases = [...load("inclusion"), ...load("consistency")];
  const { context, p } = await page();
  state.backend = DEMO;
  await visit(p, `${PROXY}/`);
  const wrong = await p.evaluate(async (cs) => {
    const v = await import("/web/verify.js");
    const d = (x) => (x ? v.b64decode(x) : new Uint8Array(0));
    const out = [];
    for (const c of cs) {
      let err = false;
      try {
        if ("leafIdx" in c) await v.verifyInclusion(c.leafIdx, c.treeSize, d(c.leafHash), (c.proof || []).map(d), d(c.root));
        else await v.verifyConsistency(c.size1, c.size2, (c.proof || []).map(d), d(c.root1), d(c.root2));
      } catch {
        err = true;
      }
      if (err !== c.wantErr) out.push(`${c.name}: ${err ? "refused" : "accepted"}`);
    }
    return out;
  }, cases);
  console.log(`  ${cases.length} RFC 6962 proof cases`);
  assert(wrong.length === 0, wrong.join("; "));
  await context.close();
});

await test("the_family_page_shows_the_right_figures_each_verified", async () => {
  state.backend = DEMO;
  state.alter = null;
  const { context, p } = await page();
  let bytes = 0;
  p.on("requestfinished", async (req) => {
    const s = await req.sizes().catch(() => null);
    if (s) bytes += s.responseBodySize + s.responseHeadersSize;
  });
  await visit(p, `${PROXY}/students/${FAMILY}`);
  const served = (await getJSON(`${DEMO}/v1/students/${FAMILY}`)).claims.map((c) => c.object);
  for (const c of served) {
    const row = `tr[data-claim="${c.claim}"]`;
    assert((await figureText(p, `${row} [data-figure=value]`)) === yuan(c.value), `value of ${c.claim}`);
    assert((await figureText(p, `${row} [data-figure=made-good]`)) === yuan(c.consumed), `made good of ${c.claim}`);
    assert((await figureText(p, `${row} [data-figure=outstanding]`)) === yuan(c.value - c.consumed), `outstanding of ${c.claim}`);
  }
  const states = await p.$$eval("[data-verified]", (els) => els.map((e) => e.dataset.verified));
  assert(states.length >= 4 && states.every((s) => s === "true"), `all verified: ${states}`);
  assert((await p.$$("[role=alert]")).length === 0, "no alarm");
  // Each object behind the figures was proven against the signed state note.
  const proofs = await p.$eval("body", (b) => Number(b.dataset.stateProofs));
  const objects = (await getJSON(`${DEMO}/v1/students/${FAMILY}`)).claims.length;
  assert(proofs >= 1 + objects, `state proofs verified: ${proofs}`);
  const ms = await p.$eval("body", (b) => Number(b.dataset.verifyMs));
  const n = await p.$eval("body", (b) => Number(b.dataset.verifiedEntries));
  console.log(`  TARGET first view of a family page: ${(bytes / 1024).toFixed(1)} KB transferred (<= 300 KB)`);
  console.log(`  TARGET verification of ${n} proven entries and ${proofs} state proofs: ${ms} ms after the data arrived (<= 300 ms)`);
  assert(bytes <= 300 * 1024, "first view <= 300 KB");
  await context.close();
});

await test("a_response_altered_in_flight_turns_the_affected_figures_false_with_an_alarm", async () => {
  state.backend = DEMO;
  // The claim's lessons are raised by one in the entry's payload and in the claim object,
  // so the figures agree with each other but not with the signed, logged entry.
  state.alter = (url, data) => {
    if (!url.startsWith(`/v1/students/${FAMILY}`)) return null;
    const body = JSON.parse(data);
    const e = body.entries.find((x) => JSON.parse(Buffer.from(x.envelope.payload, "base64")).kind === "claim_recorded");
    const p = JSON.parse(Buffer.from(e.envelope.payload, "base64"));
    p.lessons += 1;
    e.envelope.payload = Buffer.from(JSON.stringify(p)).toString("base64");
    body.claims[0].object.lessons += 1;
    return Buffer.from(JSON.stringify(body));
  };
  const { context, p } = await page();
  await visit(p, `${PROXY}/students/${FAMILY}`);
  state.alter = null;
  const alarms = await p.$$eval("[role=alert]", (els) => els.map((e) => e.dataset.alarm));
  assert(alarms.includes("leaf_hash_mismatch"), `alarm shown: ${alarms}`);
  assert(await p.isVisible("[role=alert]"), "the alarm is visible");
  const states = await p.$$eval("tr[data-claim] [data-verified]", (els) => els.map((e) => e.dataset.verified));
  assert(states.length > 0 && states.every((s) => s === "false"), `claim figures false: ${states}`);
  await context.close();
});

// The state proofs' tests, in this order (scripts/browser/state-tests.mjs).
await import("./state-tests.mjs");

await test("a_history_rewritten_between_two_visits_is_caught", async () => {
  state.alter = null;
  const { context, p } = await page();
  state.backend = FORK_A;
  await visit(p, `${PROXY}/students/stu-0eb01`);
  assert((await p.$$("[role=alert]")).length === 0, "first visit is clean");
  state.backend = FORK_B; // same operator key, same size, another history
  await visit(p, `${PROXY}/students/stu-0eb01`);
  const alarms = await p.$$eval("[role=alert]", (els) => els.map((e) => e.dataset.alarm));
  assert(alarms.includes("history_rewritten"), `rewrite caught: ${alarms}`);
  const states = await p.$$eval("[data-verified]", (els) => els.map((e) => e.dataset.verified));
  assert(states.every((s) => s === "false"), "nothing verified after a rewrite");
  await context.close();
});

await test("a_different_operator_key_on_a_later_visit_is_an_alarm", async () => {
  const { context, p } = await page();
  state.backend = DEMO;
  await visit(p, `${PROXY}/students/${FAMILY}`);
  await p.evaluate(() => {
    for (const k of Object.keys(localStorage)) if (k.startsWith("ll.pin.")) localStorage.setItem(k, JSON.stringify("operator+00000000+AQ" + "A".repeat(42) + "="));
  });
  await visit(p, `${PROXY}/students/${FAMILY}`);
  const alarms = await p.$$eval("[role=alert]", (els) => els.map((e) => e.dataset.alarm));
  assert(alarms.includes("operator_key_changed"), `alarm: ${alarms}`);
  await context.close();
});

await test("a_family_confirms_a_proposed_lesson_from_the_browser_and_the_ledger_records_it", async () => {
  state.backend = FIXTURE;
  state.alter = null;
  const { context, p } = await page();
  await visit(p, `${PROXY}/students/stu-0eb01`);
  const waiting = await p.$$eval(".waiting li[data-lesson]", (els) => els.map((e) => e.dataset.lesson));
  assert(waiting.join() === "l-web-01,l-web-02,l-web-03", `waiting: ${waiting}`);
  const days = await figureText(p, ".waiting li [data-figure=days-left]");
  assert(/15/.test(days), `days left: ${days}`);
  // The README's picture: a family with lessons waiting, on a 360 px phone.
  await p.screenshot({ path: path.join(ROOT, "src/web/screenshot-family.png"), fullPage: true });
  await p.setInputFiles("[data-import-key]", KEY_FILE);
  await p.waitForSelector("[data-vkey]");
  await p.click('button[data-action=lesson_confirmed][data-subject="l-web-01"]');
  await p.waitForSelector("[data-receipt]", { timeout: 15000 });
  const index = Number(await p.$eval("[data-receipt]", (e) => e.dataset.receipt));
  const entry = await getJSON(`${FIXTURE}/v1/entries/${index}`);
  const payload = JSON.parse(Buffer.from(entry.envelope.payload, "base64"));
  assert(payload.kind === "lesson_confirmed" && payload.lesson === "l-web-01", "the ledger holds the confirmation");
  assert(entry.envelope.signatures[0].keyid.startsWith("stu-0eb01+"), "signed by the family");
  const receipts = await p.evaluate(async () => (await import("/web/sign.js")).listReceipts());
  assert(receipts.some((r) => r.index === index), "the receipt is kept");
  await visit(p, `${PROXY}/students/stu-0eb01`);
  const after = await p.$$eval(".waiting li[data-lesson]", (els) => els.map((e) => e.dataset.lesson));
  assert(after.join() === "l-web-02,l-web-03", `waiting after: ${after}`);
  // And a dispute, signed the same way.
  await p.click('button[data-action=lesson_disputed][data-subject="l-web-02"]');
  await p.waitForSelector("[data-receipt]", { timeout: 15000 });
  const disputed = await getJSON(`${FIXTURE}/v1/entries/${await p.$eval("[data-receipt]", (e) => e.dataset.receipt)}`);
  assert(JSON.parse(Buffer.from(disputed.envelope.payload, "base64")).kind === "lesson_disputed", "the ledger holds the dispute");
  await context.close();
});

await test("an_institution_imports_its_key_file_and_proposes_a_lesson_the_ledger_records", async () => {
  state.backend = FIXTURE;
  state.alter = null;
  const { context, p } = await page();
  await visit(p, `${PROXY}/institutions/inst-0d0a0e`);
  await p.setInputFiles("[data-import-key]", KEY_FILE.replace("stu-0eb01", "inst-0d0a0e"));
  await p.waitForSelector("[data-vkey]");
  await p.fill("[data-propose-allocation]", "a-web-01");
  await p.fill("[data-propose-lesson]", "l-web-04");
  await p.click("button[data-action=lesson_proposed]");
  await p.waitForSelector("[data-receipt]", { timeout: 15000 });
  const entry = await getJSON(`${FIXTURE}/v1/entries/${await p.$eval("[data-receipt]", (e) => e.dataset.receipt)}`);
  const payload = JSON.parse(Buffer.from(entry.envelope.payload, "base64"));
  assert(payload.kind === "lesson_proposed" && payload.lesson === "l-web-04" && payload.allocation === "a-web-01", "the ledger holds the proposal");
  await context.close();
});

await test("an_association_cosigns_the_verified_checkpoint_from_the_browser", async () => {
  state.backend = FIXTURE;
  state.alter = null;
  const { context, p } = await page();
  await visit(p, `${PROXY}/audit`);
  await p.fill("[data-cosign-name]", "assoc-0a");
  await p.setInputFiles("[data-cosign-key]", KEY_FILE.replace("stu-0eb01", "assoc-0a"));
  await p.waitForSelector("[data-key-imported]");
  await p.click("[data-cosign]");
  await p.waitForSelector("[data-cosigned], [role=alert]", { timeout: 15000 });
  assert(await p.$("[data-cosigned]"), `cosigned: ${await p.textContent("main")}`);
  const checkpoint = await (await fetch(`${FIXTURE}/checkpoint`)).text();
  assert(checkpoint.includes("\u2014 assoc-0a "), "the server serves the association's cosignature");
  await context.close();
});

await test("a_family_creates_its_key_in_the_browser_and_keeps_it", async () => {
  state.backend = FIXTURE;
  const { context, p } = await page({ acceptDownloads: true });
  await visit(p, `${PROXY}/students/stu-0eb01`);
  const download = p.waitForEvent("download");
  await p.click("[data-create-key]");
  const backup = await download;
  assert(backup.suggestedFilename() === "stu-0eb01.key", "a backup is offered");
  await p.waitForSelector("[data-vkey]");
  assert(await p.isVisible("svg.qr"), "the verifier key is shown as a QR code");
  const vkey = await p.$eval("[data-vkey]", (e) => e.dataset.vkey);
  assert(/^stu-0eb01\+[0-9a-f]{8}\+A[Q-f][A-Za-z0-9+/]{42}$/.test(vkey), `vkey: ${vkey}`);
  const extractable = await p.evaluate(async () => {
    const keys = await (await import("/web/sign.js")).listKeys();
    return keys[0].privateKey.extractable;
  });
  assert(extractable === false, "the stored key is not extractable");
  await visit(p, `${PROXY}/students/stu-0eb01`);
  // The key panel reads IndexedDB after the page is ready: wait for it.
  await p.waitForSelector("[data-vkey]");
  assert((await p.$eval("[data-vkey]", (e) => e.dataset.vkey)) === vkey, "kept across visits");
  await context.close();
});

await test("the_chinese_and_english_pages_both_render", async () => {
  state.backend = DEMO;
  const { context, p } = await page();
  await visit(p, `${PROXY}/students/${FAMILY}`);
  assert((await p.getAttribute("html", "lang")) === "zh-CN", "Chinese first");
  assert((await p.textContent("#waiting-h")).includes("等待您确认"), "zh heading");
  await p.click("[data-lang-toggle]");
  await p.waitForSelector("body[data-ready=true]");
  assert((await p.getAttribute("html", "lang")) === "en", "English");
  assert((await p.textContent("#waiting-h")).includes("Lessons waiting"), "en heading");
  await context.close();
});

await test("an_entry_altered_in_a_tile_fails_the_in_browser_audit", async () => {
  state.backend = DEMO;
  // One byte of the first entry bundle's first signature flipped in flight.
  state.alter = (url, data) => {
    if (url !== "/tile/entries/000") return null;
    const out = Buffer.from(data);
    const len = out.readUInt16BE(0);
    out[2 + len - 1] ^= 1;
    return out;
  };
  const { context, p } = await page();
  await visit(p, `${PROXY}/audit`);
  await p.click("[data-run-audit]");
  await p.waitForSelector("[data-audit=pass], [data-audit=fail]", { timeout: 60000 });
  state.alter = null;
  const verdict = await p.$eval("[role=status][data-audit]", (e) => e.dataset.audit);
  assert(verdict === "fail", `audit verdict: ${verdict}`);
  const alarms = await p.$$eval("[role=alert]", (els) => els.map((e) => e.dataset.alarm));
  assert(alarms.includes("bad_signature"), `alarm: ${alarms}`);
  await context.close();
});

await test("the_association_audits_the_whole_log_in_a_worker", async () => {
  state.backend = DEMO;
  const { context, p } = await page({ viewport: { width: 1000, height: 800 } });
  await visit(p, `${PROXY}/audit`);
  await p.click("[data-run-audit]");
  await p.waitForSelector("[data-audit=pass], [data-audit=fail]", { timeout: 600000 });
  const verdict = await p.$eval("[role=status][data-audit]", (e) => [e.dataset.audit, e.dataset.sigsPerSec, e.textContent, e.dataset.signatures, e.dataset.seconds]);
  assert(verdict[0] === "pass", `audit: ${verdict[2]}`);
  console.log(`  TARGET in-browser audit: ${verdict[2]}; ${verdict[3]} signatures, ${verdict[4]} s in all, ${verdict[1]} signatures/s while checking them`);
  // Per-institution liabilities, from the audit's verified entries.
  const liabilities = await p.$$eval("[data-liabilities=done] tr[data-institution]", (els) => els.length);
  assert(liabilities > 0, "per-institution liabilities listed");
  await visit(p, `${PROXY}/pool`);
  await p.click("[data-run-audit]");
  await p.waitForSelector("[data-audit=pass]", { timeout: 600000 });
  assert((await p.$$("svg.chart")).length >= 3, "charts drawn");
  for (const name of ["pledged", "delivered", "owed"]) {
    const verified = await p.$eval(`[data-figure=${name}]`, (e) => e.dataset.verified);
    assert(verified === "true", `the pool's ${name} total agrees with the verified entries`);
  }
  // The audit learned the associations' keys from the verified genesis: the family
  // page now checks their cosignatures.
  await visit(p, `${PROXY}/students/${FAMILY}`);
  const cosigs = await p.$$eval("[data-cosig]", (els) => els.map((e) => e.dataset.cosig));
  assert(cosigs.length > 0 && cosigs.every((c) => c === "verified"), `cosignatures: ${cosigs}`);
  await context.close();
});


await test("the_institution_pages_figures_are_each_verified", async () => {
  state.backend = FIXTURE;
  state.alter = null;
  const { context, p } = await page();
  await visit(p, `${PROXY}/institutions/inst-0d0a0e`);
  const served = await getJSON(`${FIXTURE}/v1/institutions/inst-0d0a0e/pledges`);
  for (const row of served.pledges) {
    const tr = `tr[data-pledge="${row.pledge}"]`;
    for (const name of ["available", "reserved", "delivered"]) {
      assert((await figureText(p, `${tr} [data-figure=${name}]`)) === String(row[name]), `${row.pledge} ${name}`);
    }
  }
  const states = await verifiedStates(p, "main");
  assert(states.length >= 9 && states.every((s) => s.endsWith("=true")), `all verified: ${states}`);
  assert(await p.$('tr[data-allocation="a-web-01"]'), "the allocation to deliver is listed");
  assert((await p.$$("[role=alert]")).length === 0, "no alarm");
  // A figure the server misstates is shown unverified, with the others still checked.
  state.alter = (url, data) => {
    if (!url.startsWith("/v1/pledges/p-web-01")) return null;
    const body = JSON.parse(data);
    body.pledge.object.delivered += 1;
    return Buffer.from(JSON.stringify(body));
  };
  await visit(p, `${PROXY}/institutions/inst-0d0a0e`);
  state.alter = null;
  const delivered = await p.$eval('tr[data-pledge="p-web-01"] [data-figure=delivered]', (e) => e.dataset.verified);
  assert(delivered === "false", "a misstated delivered count is not verified");
  await context.close();
});

await test("a_demo_donors_pledges_and_allocations_are_each_verified", async () => {
  // The demo's donors have allocations confirmed, deemed confirmed, disputed either
  // way, declined and expired: every figure is recomputed from their entries.
  state.backend = DEMO;
  state.alter = null;
  const { context, p } = await page();
  for (const donor of ["inst-0001", "inst-0002"]) {
    await visit(p, `${PROXY}/institutions/${donor}`);
    const states = await verifiedStates(p, "main");
    const pledges = await p.$$("tr[data-pledge]");
    assert(pledges.length > 0 && states.every((s) => s.endsWith("=true")), `${donor}: ${states.filter((s) => !s.endsWith("=true"))}`);
  }
  await context.close();
});

await test("an_institution_pledges_a_course_from_the_browser_and_the_ledger_records_it", async () => {
  state.backend = FIXTURE;
  state.alter = null;
  const { context, p } = await page();
  await visit(p, `${PROXY}/institutions/inst-0d0a0e`);
  await p.setInputFiles("[data-import-key]", KEY_FILE.replace("stu-0eb01", "inst-0d0a0e"));
  await p.waitForSelector("[data-vkey]");
  await p.fill("[data-pledge-id]", "p-web-07");
  await p.selectOption("[data-pledge-subject]", "swimming");
  await p.selectOption("[data-pledge-district]", "pudong");
  await p.fill("[data-pledge-value]", "85.50");
  await p.fill("[data-pledge-seats]", "4");
  // By keyboard: the button is reached with Tab and pressed with Enter.
  await p.focus('button[data-action=pledge_offered]');
  await p.keyboard.press("Enter");
  await p.waitForSelector(".pledge-form [data-receipt], .pledge-form [role=alert]", { timeout: 15000 });
  const index = await p.$eval(".pledge-form [data-receipt]", (e) => e.dataset.receipt);
  const entry = await getJSON(`${FIXTURE}/v1/entries/${index}`);
  const payload = JSON.parse(Buffer.from(entry.envelope.payload, "base64"));
  assert(payload.kind === "pledge_offered" && payload.pledge === "p-web-07" && payload.institution === "inst-0d0a0e", "the ledger holds the pledge");
  assert(payload.subject === "swimming" && payload.district === "pudong" && payload.value_per_lesson_fen === 8550 && payload.seats === 4, `payload: ${JSON.stringify(payload)}`);
  assert(entry.envelope.signatures[0].keyid.startsWith("inst-0d0a0e+"), "signed by the institution");
  await visit(p, `${PROXY}/institutions/inst-0d0a0e`);
  assert(await p.$('tr[data-pledge="p-web-07"]'), "the new pledge is listed, awaiting approval");
  await context.close();
});

await test("a_disputed_lesson_shows_its_reason_and_resolution_each_verified", async () => {
  state.backend = FIXTURE;
  state.alter = null;
  const { context, p } = await page();
  await visit(p, `${PROXY}/students/stu-0eb01`);
  const row = (l) => `.disputes tr[data-lesson="${l}"]`;
  assert((await figureText(p, `${row("l-web-05")} [data-figure=dispute-reason]`)).includes("学生未出席"), "reason, in Chinese");
  assert((await figureText(p, `${row("l-web-05")} [data-figure=dispute-resolution]`)).includes("异议成立"), "resolution");
  assert((await figureText(p, `${row("l-web-06")} [data-figure=dispute-resolution]`)).includes("等待"), "open dispute");
  const states = await verifiedStates(p, ".disputes");
  assert(states.length >= 6 && states.every((s) => s.endsWith("=true")), `verified: ${states}`);
  const waiting = await p.$$eval(".waiting li[data-lesson]", (els) => els.map((e) => e.dataset.lesson));
  assert(!waiting.includes("l-web-05") && !waiting.includes("l-web-06"), `disputed lessons wait no more: ${waiting}`);
  await p.click("[data-lang-toggle]");
  await p.waitForSelector("body[data-ready=true]");
  assert((await figureText(p, `${row("l-web-05")} [data-figure=dispute-resolution]`)).includes("dispute upheld · delivery not proven"), "in English");
  await context.close();
});

await test("the_checkpoint_history_renders_with_verified_cosignatures", async () => {
  state.backend = FIXTURE;
  state.alter = null;
  const { context, p } = await page();
  await visit(p, `${PROXY}/audit`);
  await p.fill("[data-cosign-name]", "assoc-0a");
  await p.setInputFiles("[data-cosign-key]", KEY_FILE.replace("stu-0eb01", "assoc-0a"));
  await p.waitForSelector("[data-key-imported]");
  await p.click("[data-cosign]");
  await p.waitForSelector("[data-cosigned]", { timeout: 15000 });
  const size = Number(await p.$eval("[data-cosigned]", (e) => e.dataset.cosigned));
  await visit(p, `${PROXY}/audit`);
  await p.waitForSelector(".history[data-history=done]", { timeout: 30000 });
  const rows = await p.$$eval("tr[data-checkpoint]", (els) => els.map((e) => Number(e.dataset.checkpoint)));
  assert(rows.length > 1 && rows.includes(size), `history rows: ${rows}`);
  const cosigs = await p.$$eval(`tr[data-checkpoint="${size}"] [data-cosig]`, (els) => els.map((e) => `${e.dataset.cosigner}:${e.dataset.cosig}`));
  assert(cosigs.join() === "assoc-0a:verified", `cosignatures of ${size}: ${cosigs}`);
  const states = await verifiedStates(p, ".history");
  assert(states.every((s) => s.endsWith("=true")), `every checkpoint verified: ${states}`);
  await context.close();
});

await test("a_family_sets_its_choices_from_the_browser_and_the_claim_shows_them", async () => {
  state.backend = FIXTURE;
  state.alter = null;
  const { context, p } = await page();
  await visit(p, `${PROXY}/students/stu-0eb01`);
  await p.setInputFiles("[data-import-key]", KEY_FILE);
  await p.waitForSelector("[data-vkey]");
  const form = '[data-claim-prefs="c-web-01"]';
  await p.selectOption(`${form} [data-pref-rank="2"]`, "art");
  await p.check(`${form} [data-pref-district="pudong"]`);
  await p.click(`${form} [data-find-courses]`);
  await p.waitForSelector(`${form} [data-courses=done]`, { timeout: 15000 });
  const listed = await p.$$eval(`${form} tr[data-course]`, (els) => els.map((e) => e.dataset.course));
  assert(listed.join() === "p-web-01,p-web-02", `courses that fit: ${listed}`);
  const states = await verifiedStates(p, `${form} .courses`);
  assert(states.filter((s) => !s.startsWith("seats-left")).every((s) => s.endsWith("=true")), `courses checked: ${states}`);
  await p.check(`${form} [data-request="p-web-02"]`);
  let posted = null;
  state.onRequest = (method, url, body) => { if (method === "POST" && url === "/v1/entries") posted = body; };
  await p.click(`${form} button[data-action=claim_preferences_set]`);
  await p.waitForSelector(`${form} [data-receipt], ${form} [role=alert]`, { timeout: 15000 });
  state.onRequest = null;
  // The signed envelope's bytes: the payload exactly as formats.md §3 lays it out,
  // signed by the student's key over DSSE's PAE.
  const envelope = JSON.parse(posted.toString());
  const payloadBytes = Buffer.from(envelope.payload, "base64");
  const payload = JSON.parse(payloadBytes);
  assert(Object.keys(payload).join() === "kind,id,ledger,claim,subjects,accepts_online,accepted_districts,requests", `fields: ${Object.keys(payload)}`);
  assert(payload.kind === "claim_preferences_set" && payload.claim === "c-web-01" && payload.ledger === "lessons.example/browser-tests", "kind, claim, ledger");
  assert(JSON.stringify([payload.subjects, payload.accepts_online, payload.accepted_districts, payload.requests])
    === JSON.stringify([["math", "art"], true, ["minhang", "pudong"], ["p-web-02"]]), `choices: ${payloadBytes}`);
  assert(/^prefs\.[0-9a-z]+\.c-web-01$/.test(payload.id), `id: ${payload.id}`);
  const [sig] = envelope.signatures;
  assert(envelope.signatures.length === 1 && sig.keyid.startsWith("stu-0eb01+"), "signed by the student alone");
  // name + key id + base64(0x01 || key); the base64 may itself hold '+'.
  const raw = Buffer.from(/^[^+]+\+[0-9a-f]{8}\+(.+)$/.exec(sig.keyid)[1], "base64").subarray(1);
  const key = crypto.createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") }, format: "jwk" });
  const type = Buffer.from(envelope.payloadType);
  const pae = Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payloadBytes.length} `), payloadBytes]);
  assert(envelope.payloadType === "application/vnd.lesson-ledger.entry.v2+json", "payload type");
  assert(crypto.verify(null, pae, key, Buffer.from(sig.sig, "base64")), "the signature verifies over PAE");
  // The ledger took it, and the claim now shows the choices from its verified entries.
  const receipt = await p.$(`${form} [data-receipt]`);
  assert(receipt, `accepted: ${await p.textContent(`${form} .status`)}`);
  const entry = await getJSON(`${FIXTURE}/v1/entries/${await receipt.evaluate((e) => e.dataset.receipt)}`);
  assert(entry.envelope.payload === envelope.payload, "the ledger holds the envelope posted");
  await visit(p, `${PROXY}/students/stu-0eb01`);
  assert((await figureText(p, `${form} [data-figure=pref-subjects]`)) === "math › art", "ranked subjects shown");
  assert((await figureText(p, `${form} [data-figure=pref-requests]`)) === "p-web-02", "request shown");
  const shown = await verifiedStates(p, `${form} dl.prefs`);
  assert(shown.length === 4 && shown.every((s) => s.endsWith("=true")), `choices verified: ${shown}`);
  await context.close();
});

await finish();
