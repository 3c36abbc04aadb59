// The institution page, /institutions/{id}: a closed institution's liability (with its
// CSV), and a donor's pledges (available, reserved, delivered) and the allocations it
// must deliver. The list of pledges is the server's (GET /v1/institutions/{id}/pledges);
// every figure shown is recomputed from entries verified in this browser — each pledge's
// proven balance and the proven balance of every allocation made on it — and compared
// with the server's object, whose state proof against the signed state note is checked
// here too (the liability's figures rest on their state proofs alone). An institution
// imports its key file here, pledges a course and proposes delivered lessons (signed in
// the browser, receipt verified and kept).

import { establishTrust, getJSON, getProven, provenObject, verifiedGenesis, verifyProven, verifyState } from "./api.js";
import { lessonsOf } from "./family.js";
import { t, when, yuan } from "./i18n.js";
import { actionButtons, keyPanel } from "./keys.js";
import { alarm, figure, h, table, trustBanner } from "./ui.js";

/** Most pledge pages followed, and most allocations checked, on one visit. */
const PLEDGE_PAGES_MAX = 20;
const ALLOCATIONS_CHECKED_MAX = 200;

/** Runs `f` over `items`, `width` at a time (a page of requests, not hundreds at once). */
async function inBatches(items, width, f) {
  const out = [];
  for (let i = 0; i < items.length; i += width) out.push(...(await Promise.all(items.slice(i, i + width).map(f))));
  return out;
}

async function listPledges(id) {
  const rows = [];
  let after = null;
  for (let n = 0; n < PLEDGE_PAGES_MAX; n++) {
    const page = await getJSON(`/v1/institutions/${encodeURIComponent(id)}/pledges${after ? `?after=${encodeURIComponent(after)}` : ""}`);
    rows.push(...page.pledges);
    if (!page.next) break;
    after = page.next;
  }
  return rows;
}

/** `kind`'s balance of `id`, its entries and its object's state proof verified, its object as served. */
async function proven(trust, kind, id) {
  const p = await getProven(`/v1/${kind}s/${encodeURIComponent(id)}`);
  const v = await verifyProven(trust, p);
  return { ...v, served: p.answer[kind].object, proven: provenObject(v, kind, id) };
}

/**
 * One allocation's figures recomputed from its verified entries: the lessons final,
 * pending and still to deliver, and when it expires (the validity from the genesis, or
 * the pledge's end, whichever is first).
 */
function allocationFigures(a, pledge, genesis) {
  const made = a.entries.find((e) => e.payload.kind === "allocation_made");
  if (!made) return null;
  const life = lessonsOf(a.entries);
  const k = made.payload.lessons;
  const remaining = life.status === "active" ? k - life.counts.final - life.pending : 0;
  const validity = BigInt(made.time) + BigInt(genesis.allocation_validity_days) * BigInt(genesis.day_micros);
  const until = BigInt(pledge.valid_until_micros);
  return {
    id: made.payload.allocation, claim: made.payload.claim, subject: pledge.subject, status: life.status,
    final: life.counts.final, pending: life.pending, remaining, expires: validity < until ? validity : until,
    verified: a.ok && a.proven && made.verified && genesis.verified, served: a.served,
  };
}

/** A pledge's figures from its verified entries and those of its allocations. */
async function pledgeFigures(trust, row, genesis, budget) {
  const p = await proven(trust, "pledge", row.pledge);
  const offered = p.entries.find((e) => e.payload.kind === "pledge_offered");
  const allocIds = p.entries.filter((e) => e.payload.kind === "allocation_made").map((e) => e.payload.allocation);
  const complete = allocIds.length <= budget.left;
  budget.left -= Math.min(budget.left, allocIds.length);
  const allocs = complete ? await inBatches(allocIds, 6, (id) => proven(trust, "allocation", id)) : [];
  const o = offered ? offered.payload : row;
  const figures = allocs.map((a) => allocationFigures(a, o, genesis)).filter(Boolean);
  const capacity = offered ? o.seats * o.lessons_per_seat : 0;
  const withdrawn = p.entries.filter((e) => e.payload.kind === "pledge_withdrawn").reduce((n, e) => n + e.payload.lessons, 0);
  const reserved = figures.reduce((n, a) => n + a.pending + a.remaining, 0);
  const delivered = figures.reduce((n, a) => n + a.final, 0);
  const ok = trust.ok && p.ok && p.proven && !!offered && complete && figures.every((a) => a.verified) && genesis.verified;
  const s = p.served;
  return {
    row, offered: o, ok, allocations: figures, failures: [...p.failures, ...allocs.flatMap((a) => a.failures)],
    approved: p.entries.some((e) => e.payload.kind === "pledge_approved"),
    figures: {
      available: [capacity - reserved - delivered - withdrawn, s.available],
      reserved: [reserved, s.reserved],
      delivered: [delivered, s.delivered],
    },
    entries: p.entries.length + allocs.reduce((n, a) => n + a.entries.length, 0),
  };
}

/**
 * The liability (`GET /v1/institutions/{id}/report`): its figures are verified when its
 * state proof (and the institution's) checks against the signed state note.
 */
function liabilitySection(id, report, state) {
  const l = report.liability.object;
  const ok = provenObject({ state }, "liability", id) && provenObject({ state }, "party", id);
  const r = { ...l, outstanding: l.owed - l.made_good };
  const csv = `institution,students,claims,lessons_owed,owed_fen,made_good_fen,outstanding_fen\n${[r.institution, r.students, r.claims, r.lessons_owed, r.owed, r.made_good, r.outstanding].join(",")}\n`;
  return h("section", {}, h("h2", {}, t("liability")),
    h("div", { class: "cards" }, [[t("students"), String(r.students), "students"], [t("owed"), yuan(r.owed), "owed"], [t("madeGood"), yuan(r.made_good), "made-good"], [t("outstanding"), yuan(r.outstanding), "outstanding"]]
      .map(([label, value, name]) => h("div", { class: "card" }, label, h("span", { class: "big" }, figure(value, ok, name))))),
    ...state.failures.map((f) => alarm(f.code, f.detail)),
    h("a", { href: URL.createObjectURL(new Blob([csv], { type: "text/csv" })), download: `${id}-liability.csv` }, t("downloadCsv")));
}

function pledgesSection(pledges) {
  const agrees = (p, name) => p.ok && p.figures[name][0] === p.figures[name][1];
  return h("section", { "aria-labelledby": "pledges-h" }, h("h2", { id: "pledges-h" }, t("pledges")),
    pledges.length === 0 ? h("p", {}, t("noPledges")) : table(
      [t("pledge"), t("course"), t("district"), t("valuePerLesson"), t("available"), t("reserved"), t("delivered")],
      pledges.map((p) => [{ "data-pledge": p.row.pledge }, [
        h("code", {}, p.row.pledge),
        `${p.offered.subject} · ${t("grades", { a: p.offered.grade_min, b: p.offered.grade_max })}${p.approved ? "" : ` · ${t("awaitingApproval")}`}`,
        p.offered.district || t("online"),
        figure(yuan(p.offered.value_per_lesson_fen ?? p.row.value_per_lesson), p.ok, "value-per-lesson"),
        ...["available", "reserved", "delivered"].map((name) => figure(String(p.figures[name][0]), agrees(p, name), name)),
      ]])));
}

function allocationsSection(trust, id, pledges) {
  const rows = pledges.flatMap((p) => p.allocations).filter((a) => a.status === "active" && a.remaining + a.pending > 0);
  const agrees = (a) => a.verified && a.served && a.served.remaining === a.remaining && a.served.pending === a.pending;
  return h("section", { "aria-labelledby": "deliver-h" }, h("h2", { id: "deliver-h" }, t("toDeliver")),
    rows.length === 0 ? h("p", {}, t("nothingToDeliver")) : table(
      [t("allocationId"), t("course"), t("claim"), t("lessonsLeft"), t("proposed"), t("expires")],
      rows.map((a) => [{ "data-allocation": a.id }, [
        h("code", {}, a.id), a.subject, h("code", {}, a.claim),
        figure(String(a.remaining), agrees(a), "lessons-left"),
        figure(String(a.pending), agrees(a), "pending"),
        figure(when(a.expires), a.verified && a.served && BigInt(a.served.expires_at_micros) === a.expires, "expires"),
      ]])),
    proposeForm(trust, id, rows.map((a) => a.id)));
}

/** A form input with its visible label. */
function field(label, attrs) {
  const input = h("input", { type: "text", ...attrs });
  return [h("label", {}, `${label} `, input), input];
}

function proposeForm(trust, id, allocations) {
  const list = h("datalist", { id: "allocations-list" }, allocations.map((a) => h("option", { value: a })));
  const [allocLabel, allocation] = field(t("allocationId"), { name: "allocation", list: "allocations-list", placeholder: "a-…", "data-propose-allocation": "" });
  const [lessonLabel, lesson] = field(t("lessonId"), { name: "lesson", placeholder: "l-…", "data-propose-lesson": "" });
  return h("div", { class: "propose" }, h("h3", {}, t("proposeTitle")), list, allocLabel, " ", lessonLabel,
    actionButtons(trust, id, [["lesson_proposed", () => lesson.value.trim(), t("propose"), () => ({ allocation: allocation.value.trim() })]]));
}

/** Fen from a yuan amount typed by a person ("120" or "120.5"); refuses anything else. */
function fenOf(text) {
  const m = /^(\d{1,9})(?:\.(\d{1,2}))?$/.exec(text.trim());
  if (!m) throw Object.assign(new Error(t("badAmount")), { code: "malformed_amount" });
  return Number(m[1]) * 100 + Number((m[2] || "").padEnd(2, "0"));
}

/**
 * The form an institution pledges a course with (pledge_offered, schemas/entries/):
 * the subject and district from the verified genesis's lists, grades, seats, lessons per
 * seat, value per lesson in yuan, and how many days it stays valid from today.
 */
function pledgeForm(trust, id, genesis) {
  const select = (name, options, attrs = {}) => h("select", { name, ...attrs }, options.map((o) => h("option", { value: o }, o || "—")));
  const subject = select("subject", genesis.subjects || [], { "data-pledge-subject": "" });
  const district = select("district", ["", ...(genesis.districts || [])], { "data-pledge-district": "" });
  const online = h("input", { type: "checkbox", name: "online", "data-pledge-online": "" });
  const num = (name, value) => h("input", { type: "number", name, value, min: 0, inputmode: "numeric", [`data-pledge-${name}`]: "" });
  const inputs = { grade_min: num("grade_min", 1), grade_max: num("grade_max", 9), seats: num("seats", 10), lessons_per_seat: num("lessons_per_seat", 10), days: num("days", 180) };
  const value = h("input", { type: "text", name: "value", value: "100", inputmode: "decimal", "data-pledge-value": "" });
  const pledgeId = h("input", { type: "text", name: "pledge", value: `p-${crypto.getRandomValues(new Uint32Array(1))[0].toString(16).padStart(8, "0")}`, "data-pledge-id": "" });
  const fields = () => {
    const now = Date.now() * 1000;
    const n = (k) => Number(inputs[k].value);
    const out = {
      institution: id, subject: subject.value, grade_min: n("grade_min"), grade_max: n("grade_max"),
      online: online.checked, seats: n("seats"), lessons_per_seat: n("lessons_per_seat"), value_per_lesson_fen: fenOf(value.value),
      valid_from_micros: now, valid_until_micros: now + n("days") * 86400 * 1e6,
    };
    if (district.value) out.district = district.value;
    return out;
  };
  const label = (text, el) => h("label", {}, `${text} `, el);
  return h("section", { class: "pledge-form", "aria-labelledby": "pledge-h" }, h("h2", { id: "pledge-h" }, t("pledgeTitle")),
    h("div", { class: "form-grid" },
      label(t("pledge"), pledgeId), label(t("course"), subject), label(t("district"), district), label(t("online"), online),
      label(t("gradeMin"), inputs.grade_min), label(t("gradeMax"), inputs.grade_max), label(t("seats"), inputs.seats),
      label(t("lessonsPerSeat"), inputs.lessons_per_seat), label(t("valuePerLessonYuan"), value), label(t("validDays"), inputs.days)),
    actionButtons(trust, id, [["pledge_offered", () => pledgeId.value.trim(), t("pledgeSubmit"), fields]]));
}

/** Renders /institutions/{id} into `root`. */
export async function institutionPage(root, id) {
  const trust = await establishTrust();
  root.replaceChildren(trustBanner(trust), h("h1", {}, `${t("institution")} · `, h("code", {}, id)), h("p", { class: "loading" }, "…"));
  const parts = [];
  try {
    const report = await getJSON(`/v1/institutions/${encodeURIComponent(id)}/report`);
    parts.push(liabilitySection(id, report, await verifyState(trust, report)));
  } catch (e) {
    // A donor that never closed has no liability report.
    if (e.code !== "institution_not_found") parts.push(alarm(e.code || "error", e.message));
  }
  let genesis = { ...(trust.info ? trust.info.genesis : {}), verified: false };
  if (trust.ok) {
    try {
      genesis = { ...(await verifiedGenesis(trust)), verified: true };
    } catch (e) {
      parts.push(alarm(e.code || "genesis_unverified", e.message));
    }
  }
  let pledges = [];
  try {
    const rows = await listPledges(id);
    const budget = { left: ALLOCATIONS_CHECKED_MAX };
    const started = performance.now();
    pledges = await inBatches(rows, 4, (row) => pledgeFigures(trust, row, genesis, budget));
    document.body.dataset.verifyMs = String(Math.round(performance.now() - started));
    document.body.dataset.verifiedEntries = String(pledges.reduce((n, p) => n + p.entries, 0));
  } catch (e) {
    if (e.code !== "institution_not_found") parts.push(alarm(e.code || "error", e.message));
  }
  const seen = new Set();
  const failures = pledges.flatMap((p) => p.failures).filter((f) => !seen.has(`${f.code} ${f.index}`) && seen.add(`${f.code} ${f.index}`));
  root.replaceChildren(
    trustBanner(trust),
    ...failures.map((f) => alarm(f.code, f.index === undefined ? f.detail : `#${f.index}: ${f.detail}`)),
    h("h1", {}, `${t("institution")} · `, h("code", {}, id)),
    ...parts,
    pledgesSection(pledges),
    allocationsSection(trust, id, pledges),
    pledgeForm(trust, id, genesis),
    keyPanel(id, trust),
  );
}
