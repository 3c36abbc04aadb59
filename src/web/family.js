// The family page, /students/{ref}: what the ledger owes the student, what was matched,
// the lessons held, and first of all the lessons waiting on the family. Every figure is
// recomputed from entries verified in this browser (signatures, leaf hashes, inclusion
// proofs against the pinned operator's checkpoint) and compared with the server's
// object, whose state proof against the signed state note is checked here too: a
// figure is verified only if both hold. The proven allocations' open lessons are the
// complete list of what waits on the family; one missing from the page is an alarm.

import { establishTrust, getProven, provenObject, verifiedGenesis, verifyAbsence, verifyProven } from "./api.js";
import { t, when, yuan } from "./i18n.js";
import { keyPanel, actionButtons } from "./keys.js";
import { preferencesSection } from "./prefs.js";
import { alarm, figure, h, table, trustBanner } from "./ui.js";

/** Lessons of one allocation, from its verified entries, in log order. */
export function lessonsOf(entries) {
  const lessons = new Map();
  const n = { final: 0, resolved: 0, proposed: 0, settled: 0 };
  let status = "active";
  for (const { payload: p, time } of entries) {
    const l = lessons.get(p.lesson);
    switch (p.kind) {
      case "lesson_proposed": lessons.set(p.lesson, { id: p.lesson, state: "proposed", time, proposedAt: time }); n.proposed++; break;
      case "lesson_consumed": lessons.set(p.lesson, { id: p.lesson, state: "consumed", time }); n.final++; break;
      case "lesson_confirmed": case "lesson_deemed_confirmed":
        if (l) Object.assign(l, { state: p.kind === "lesson_confirmed" ? "confirmed" : "deemed", time });
        n.final++; n.settled++; break;
      case "dispute_resolved": n.resolved++; if (p.outcome === "rejected") n.final++; break;
      case "allocation_declined": status = "declined"; break;
      case "allocation_expired": status = "expired"; break;
      default: break;
    }
  }
  return { lessons: [...lessons.values()], counts: n, status, pending: n.proposed - n.settled - n.resolved };
}

/** Recomputes the family's figures from verified entries (claims, allocations, pledges). */
function model(student, allocs, genesis, lessonInfo) {
  const day = BigInt(genesis.day_micros);
  const claims = new Map();
  for (const e of student.entries) {
    const p = e.payload;
    if (p.kind === "claim_recorded") {
      claims.set(p.claim, { ...p, value: BigInt(p.lessons) * BigInt(p.price_per_lesson_fen), madeGood: 0n, allocations: [], verified: e.verified && genesis.verified });
    }
  }
  for (const a of allocs) {
    const made = a.entries.find((e) => e.payload.kind === "allocation_made");
    const pledge = a.pledge.entries.find((e) => e.payload.kind === "pledge_offered");
    const claim = made && claims.get(made.payload.claim);
    if (!made || !pledge || !claim) continue;
    const life = lessonsOf(a.entries);
    const vpl = BigInt(pledge.payload.value_per_lesson_fen);
    claim.madeGood += BigInt(life.counts.final) * vpl;
    const left = life.status === "active" ? made.payload.lessons - life.counts.final - life.pending : 0;
    const windowEnd = (l) => BigInt(l.proposedAt) + BigInt(genesis.confirmation_window_days) * day;
    claim.allocations.push({
      id: made.payload.allocation, claim: made.payload.claim, pledge: pledge.payload, lessons: made.payload.lessons,
      left, status: life.status, expires: minBig(BigInt(made.time) + BigInt(genesis.allocation_validity_days) * day, BigInt(pledge.payload.valid_until_micros)),
      history: life.lessons.map((l) => ({ ...l, state: (lessonInfo.get(l.id) || {}).state || l.state })), pending: life.pending,
      // A proposal whose lesson is disputed or settled waits no more (lesson balances).
      waiting: life.lessons.filter((l) => l.state === "proposed" && (lessonInfo.get(l.id) || { state: "proposed" }).state === "proposed")
        .map((l) => ({ ...l, windowEnd: windowEnd(l), allocation: made.payload.allocation })),
      verified: a.ok && a.pledge.ok && made.verified && genesis.verified, served: a.served,
      proven: provenObject(a, "allocation", made.payload.allocation),
    });
  }
  return { claims: [...claims.values()], day };
}

const minBig = (a, b) => (a < b ? a : b);

/**
 * The proposed lessons' own balances (GET /v1/lessons/{id}), verified: a disputed
 * lesson's dispute is not on its allocation, so each proposal still open there is read
 * here. Returns lesson id → {state, dispute: {id, reason, outcome, resolution}, verified}.
 */
async function loadLessons(trust, allocs) {
  const ids = allocs.flatMap((a) => lessonsOf(a.entries).lessons.filter((l) => l.state === "proposed").map((l) => l.id));
  const out = new Map();
  await Promise.all(ids.map(async (id) => {
    const proven = await getProven(`/v1/lessons/${encodeURIComponent(id)}`);
    const v = await verifyProven(trust, proven);
    const raised = v.entries.find((e) => e.payload.kind === "lesson_disputed");
    const resolved = v.entries.find((e) => e.payload.kind === "dispute_resolved");
    const confirmed = v.entries.some((e) => ["lesson_confirmed", "lesson_deemed_confirmed"].includes(e.payload.kind));
    let state = "proposed";
    if (confirmed) state = "confirmed";
    else if (resolved) state = resolved.payload.outcome === "upheld" ? "void" : "final";
    else if (raised) state = "disputed";
    // The server's status for the same lesson: pending, disputed, final or void.
    const served = { proposed: "pending", confirmed: "final", disputed: "disputed", void: "void", final: "final" }[state];
    out.set(id, {
      id, state, failures: v.failures, entries: v.entries.length, ms: v.ms, proofs: v.state.verified.size,
      verified: v.ok && proven.answer.lesson.object.status === served && provenObject(v, "lesson", id)
        && (!raised || provenObject(v, "dispute", raised.payload.dispute)),
      dispute: raised ? { id: raised.payload.dispute, reason: raised.payload.reason, time: raised.time, outcome: resolved ? resolved.payload.outcome : null, resolution: resolved ? resolved.payload.reason : null } : null,
    });
  }));
  return out;
}

async function loadAllocations(trust, ids) {
  return Promise.all(ids.map(async (id) => {
    const proven = await getProven(`/v1/allocations/${encodeURIComponent(id)}`);
    const v = await verifyProven(trust, proven);
    const made = v.entries.find((e) => e.payload.kind === "allocation_made");
    // The course's terms are its offer, the pledge's first entry: one page is enough
    // (a popular pledge lists every allocation made on it after that).
    const pledgeProven = made ? await getProven(`/v1/pledges/${encodeURIComponent(made.payload.pledge)}`, 1) : { pages: [] };
    const pledge = await verifyProven(trust, pledgeProven);
    return { ...v, served: proven.answer.allocation.object, pledge };
  }));
}

/** Renders /students/{ref} into `root`. */
export async function familyPage(root, ref) {
  const trust = await establishTrust();
  root.replaceChildren(trustBanner(trust), h("p", { class: "loading" }, "…"));
  let proven;
  try {
    proven = await getProven(`/v1/students/${encodeURIComponent(ref)}`);
  } catch (e) {
    root.replaceChildren(trustBanner(trust), e.code === "student_not_found" ? await notFound(trust, ref, e.problem) : alarm(e.code, e.message));
    return;
  }
  const student = await verifyProven(trust, proven);
  // The claims as the server states them, compared with the figures recomputed here.
  const servedClaims = proven.answer.claims.map((c) => c.object);
  const allocIds = student.entries.filter((e) => e.payload.kind === "allocation_made").map((e) => e.payload.allocation);
  const allocs = await loadAllocations(trust, allocIds);
  const lessonInfo = await loadLessons(trust, allocs);
  // The window and validity come from the genesis: verified when trust holds, else
  // as the server states it (and every figure that depends on it unverified).
  let genesis = { ...(trust.info ? trust.info.genesis : {}), verified: false };
  if (trust.ok) {
    try {
      genesis = { ...(await verifiedGenesis(trust)), verified: true };
    } catch (e) {
      trust.alarms.push({ code: e.code || "genesis_unverified", detail: e.message });
    }
  }
  const seen = new Set();
  const failures = [...student.failures, ...allocs.flatMap((a) => [...a.failures, ...a.pledge.failures]), ...[...lessonInfo.values()].flatMap((l) => l.failures)]
    .filter((f) => !seen.has(`${f.code} ${f.index}`) && seen.add(`${f.code} ${f.index}`));
  const lessons = [...lessonInfo.values()];
  const entries = student.entries.length + allocs.reduce((n, a) => n + a.entries.length + a.pledge.entries.length, 0) + lessons.reduce((n, l) => n + l.entries, 0);
  const m = genesis.day_micros ? model(student, allocs, genesis, lessonInfo) : { claims: [], day: 1n };
  // Time spent verifying (fetching excluded), summed over the balances verified.
  const verifyMs = Math.round(student.ms + allocs.reduce((n, a) => n + a.ms + a.pledge.ms, 0) + lessons.reduce((n, l) => n + l.ms, 0));
  document.body.dataset.verifyMs = String(verifyMs);
  document.body.dataset.verifiedEntries = String(entries);
  // The objects proven against the signed state note (state proofs checked here).
  const proofs = [student, ...allocs.flatMap((a) => [a, a.pledge])].reduce((n, v) => n + v.state.verified.size, 0) + lessons.reduce((n, l) => n + l.proofs, 0);
  document.body.dataset.stateProofs = String(proofs);
  root.replaceChildren(
    trustBanner(trust),
    ...failures.map((f) => alarm(f.code, f.index === undefined ? f.detail : `#${f.index}: ${f.detail}`)),
    h("h1", {}, `${t("family")} · `, h("code", {}, ref)),
    ...hiddenLessons(m, proven.answer, student, lessonInfo),
    waitingSection(m, trust.ok, trust, ref),
    disputesSection(lessons, trust.ok),
    claimsSection(m, servedClaims, trust.ok, student),
    preferencesSection(trust, ref, m, servedClaims, student, genesis),
    allocationsSection(m, trust, ref),
    historySection(m),
    keyPanel(ref, trust),
    h("p", { class: "foot", "data-verify-ms": verifyMs }, t("verifyTime", { ms: verifyMs, n: entries })),
  );
}

/** "No such student", verified by the 404's proof that the signed state holds none. */
async function notFound(trust, ref, problem) {
  try {
    await verifyAbsence(trust, problem && problem.absence, "student", ref);
    return h("p", {}, figure(t("notFound"), true, "absent"));
  } catch (e) {
    return h("div", {}, h("p", {}, figure(t("notFound"), false, "absent")), alarm(e.code || "error", e.message));
  }
}

/**
 * The lessons the proven allocations of the student's answer list as open (pending or
 * disputed) that the page does not show as waiting or disputed: each is an alarm.
 */
function hiddenLessons(m, answer, student, lessonInfo) {
  const shown = new Set(m.claims.flatMap((c) => c.allocations.flatMap((a) => a.waiting.map((w) => w.id))));
  const missing = (answer.allocations || [])
    .filter((a) => provenObject(student, "allocation", a.object.allocation))
    .flatMap((a) => a.object.open_lessons.map((o) => o.lesson))
    .filter((l) => !shown.has(l) && (lessonInfo.get(l) || {}).state !== "disputed");
  return missing.length ? [alarm("open_lessons_mismatch", missing.join(", "))] : [];
}

function waitingSection(m, ok, trust, ref) {
  const now = BigInt(Date.now()) * 1000n;
  // Days left: from the entries, and equal to the window's end the proven allocation lists.
  const listed = (a, w) => a.proven && a.served.open_lessons.some((o) => o.lesson === w.id && BigInt(o.window_end_micros) === w.windowEnd);
  const waiting = m.claims.flatMap((c) => c.allocations.flatMap((a) => a.waiting.map((w) => ({ ...w, ok: ok && a.verified && listed(a, w) }))));
  return h("section", { class: "waiting", "aria-labelledby": "waiting-h" },
    h("h2", { id: "waiting-h" }, t("waiting")),
    waiting.length === 0 ? h("p", {}, t("noneWaiting")) : h("ul", {}, waiting.map((w) => {
      const left = w.windowEnd > now ? Number((w.windowEnd - now + m.day - 1n) / m.day) : 0;
      return h("li", { class: "lesson", "data-lesson": w.id },
        h("div", {}, h("code", {}, w.id), " · ", when(w.time)),
        h("div", { class: "days" }, figure(left > 0 ? t("daysLeft", { n: left }) : t("deadlinePassed"), w.ok, "days-left")),
        actionButtons(trust, ref, [["lesson_confirmed", w.id, t("confirm")], ["lesson_disputed", w.id, t("dispute")]]));
    })));
}

/** Disputed lessons: the reason given, and the operator's resolution once made. */
function disputesSection(lessons, ok) {
  const disputed = lessons.filter((l) => l.dispute);
  if (disputed.length === 0) return null;
  return h("section", { class: "disputes", "aria-labelledby": "disputes-h" }, h("h2", { id: "disputes-h" }, t("disputes")),
    table([t("lessonId"), t("status"), t("reason"), t("resolution")], disputed.map((l) => {
      const v = ok && l.verified;
      const d = l.dispute;
      return [{ "data-dispute": d.id, "data-lesson": l.id }, [
        h("code", {}, l.id),
        figure(t(`lesson_${l.state}`), v, "dispute-status"),
        figure(t(`reason_${d.reason}`), v, "dispute-reason"),
        d.outcome ? figure(`${t(`outcome_${d.outcome}`)} · ${t(`resolution_${d.resolution}`)}`, v, "dispute-resolution") : figure(t("awaitingResolution"), v, "dispute-resolution"),
      ]];
    })));
}

function claimsSection(m, served, ok, student) {
  const servedClaims = new Map(served.map((c) => [c.claim, c]));
  return h("section", {}, h("h2", {}, t("claims")), table(
    [t("claim"), t("institutionCol"), t("lessons"), t("value"), t("madeGood"), t("outstanding")],
    m.claims.map((c) => {
      const s = servedClaims.get(c.claim) || {};
      const agrees = (mine, theirs) => ok && c.verified && provenObject(student, "claim", c.claim) && theirs !== undefined && BigInt(theirs) === mine;
      const madeGoodOk = agrees(c.madeGood, s.consumed) && c.allocations.every((a) => a.verified && a.proven);
      return [{ "data-claim": c.claim }, [
        h("code", {}, c.claim), c.institution,
        figure(String(c.lessons), agrees(BigInt(c.lessons), s.lessons), "lessons"),
        figure(yuan(c.value), agrees(c.value, s.value), "value"),
        figure(yuan(c.madeGood), madeGoodOk, "made-good"),
        figure(yuan(c.value - c.madeGood), madeGoodOk, "outstanding"),
      ]];
    })));
}

function allocationsSection(m, trust, ref) {
  const rows = m.claims.flatMap((c) => c.allocations);
  return h("section", {}, h("h2", {}, t("allocations")), table(
    [t("course"), t("institutionCol"), t("district"), t("lessonsLeft"), t("expires"), t("status")],
    rows.map((a) => [{ "data-allocation": a.id }, [
      a.pledge.subject, a.pledge.institution, a.pledge.district || "online",
      figure(String(a.left), a.verified && a.proven && a.served.remaining === a.left, "lessons-left"),
      figure(when(a.expires), a.verified && a.proven && BigInt(a.served.expires_at_micros) === a.expires, "expires"),
      h("span", {}, t(a.status), a.status === "active" ? actionButtons(trust, ref, [["allocation_declined", a.id, t("decline")]]) : null),
    ]])));
}

/** The lesson history, newest first, folded: the lessons waiting come first. */
function historySection(m) {
  const rows = m.claims.flatMap((c) => c.allocations.flatMap((a) => a.history.map((l) => ({ ...l, course: a.pledge.subject, verified: a.verified }))))
    .sort((x, y) => y.time - x.time);
  return h("section", {}, h("details", {}, h("summary", {}, h("h2", {}, `${t("history")} (${rows.length})`)),
    table([t("when"), t("course"), t("status")], rows.map((l) => [{ "data-history": l.id }, [when(l.time), l.course, figure(t(l.state), l.verified, "lesson-state")]]))));
}
