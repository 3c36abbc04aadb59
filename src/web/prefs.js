// A family's choices for each open claim (issue 18, `claim_preferences_set`): the
// subjects it accepts in ranked order, the districts it accepts besides the claim's own,
// online courses or not, and up to five pledged courses it requests. The courses that fit
// are listed by the server (GET /v1/pledges with the family's filters); each listed
// course's subject, grades, place and value per lesson are checked here against its
// verified `pledge_offered` entry. The choice is signed in the browser by the student's
// key, posted, and its receipt verified and kept. The choices in force are read from the
// claim's verified entries (the latest `claim_preferences_set` supersedes the others).

import { getJSON, getProven, provenObject, verifyProven } from "./api.js";
import { t, yuan } from "./i18n.js";
import { actionButtons } from "./keys.js";
import { figure, h, table } from "./ui.js";

/** Limits of the entry (schemas/entries/claim_preferences_set.schema.json). */
export const SUBJECTS_MAX = 8;
export const REQUESTS_MAX = 5;
/** Ranked subject choices offered in the form (the entry takes up to eight). */
const RANKS_SHOWN = 4;

/** The preferences in force on a claim: its latest verified `claim_preferences_set`. */
function currentPreferences(student, claim) {
  const sets = student.entries.filter((e) => e.payload.kind === "claim_preferences_set" && e.payload.claim === claim);
  return sets.length ? sets[sets.length - 1] : null;
}

function shownPreferences(entry, ok) {
  if (!entry) return h("p", { "data-preferences": "none" }, t("noPreferences"));
  const p = entry.payload;
  const v = ok && entry.verified;
  return h("dl", { class: "prefs", "data-preferences": entry.index },
    h("dt", {}, t("rankedSubjects")), h("dd", {}, figure(p.subjects.join(" › "), v, "pref-subjects")),
    h("dt", {}, t("acceptedDistricts")), h("dd", {}, figure(p.accepted_districts.join(", ") || "—", v, "pref-districts")),
    h("dt", {}, t("online")), h("dd", {}, figure(p.accepts_online ? t("yes") : t("no"), v, "pref-online")),
    h("dt", {}, t("requests")), h("dd", {}, figure(p.requests.join(", ") || "—", v, "pref-requests")));
}

/** Checks each listed course against its verified pledge_offered entry. */
async function verifiedCourses(trust, rows) {
  return Promise.all(rows.map(async (row) => {
    try {
      const proven = await getProven(`/v1/pledges/${encodeURIComponent(row.pledge)}`);
      const v = await verifyProven(trust, proven);
      const o = (v.entries.find((e) => e.payload.kind === "pledge_offered") || {}).payload;
      const same = o && o.subject === row.subject && o.grade_min === row.grade_min && o.grade_max === row.grade_max
        && (o.district ?? null) === row.district && !!o.online === row.online && o.value_per_lesson_fen === row.value_per_lesson;
      return { row, verified: v.ok && provenObject(v, "pledge", row.pledge) && !!same };
    } catch {
      return { row, verified: false };
    }
  }));
}

/** The form of one claim: ranked subjects, districts, online, courses found, requests. */
function claimForm(trust, ref, claim, genesis, current) {
  const prefs = current ? current.payload : { subjects: [claim.subject], accepted_districts: claim.accepted_districts || [], accepts_online: claim.accepts_online, requests: [] };
  const options = ["", ...(genesis.subjects || [])];
  const ranks = Array.from({ length: RANKS_SHOWN }, (_, i) => h("select", { name: `subject-${i + 1}`, "data-pref-rank": i + 1, "aria-label": t("rank", { n: i + 1 }) },
    options.map((s) => h("option", { value: s, selected: prefs.subjects[i] === s }, s || "—"))));
  const districts = (genesis.districts || []).filter((d) => d !== claim.district).map((d) => h("label", { class: "check" },
    h("input", { type: "checkbox", value: d, checked: prefs.accepted_districts.includes(d), "data-pref-district": d }), ` ${d}`));
  const online = h("input", { type: "checkbox", checked: prefs.accepts_online, "data-pref-online": "" });
  const courses = h("div", { class: "courses", "data-courses": "idle" });
  const requested = new Set(prefs.requests);
  const chosen = () => {
    const subjects = [];
    for (const r of ranks) if (r.value && !subjects.includes(r.value)) subjects.push(r.value);
    return {
      subjects,
      accepts_online: online.checked,
      accepted_districts: districts.map((l) => l.firstChild).filter((c) => c.checked).map((c) => c.value),
      requests: [...requested].slice(0, REQUESTS_MAX),
    };
  };
  const find = async () => {
    courses.dataset.courses = "loading";
    const c = chosen();
    const q = new URLSearchParams({ grade: String(claim.grade), online: String(c.accepts_online), districts: [claim.district, ...c.accepted_districts].join(",") });
    if (c.subjects.length) q.set("subjects", c.subjects.join(","));
    const page = await getJSON(`/v1/pledges?${q}`);
    const checked = await verifiedCourses(trust, page.pledges);
    const boxes = [];
    const sync = () => boxes.forEach((b) => { b.disabled = !b.checked && requested.size >= REQUESTS_MAX; });
    courses.replaceChildren(checked.length === 0 ? h("p", {}, t("noCourses")) : table(
      [t("request"), t("course"), t("institutionCol"), t("district"), t("valuePerLesson"), t("seatsLeft")],
      checked.map(({ row, verified }) => {
        const box = h("input", {
          type: "checkbox", checked: requested.has(row.pledge), "data-request": row.pledge, "aria-label": `${t("request")} ${row.pledge}`,
          onchange: (ev) => { if (ev.target.checked) requested.add(row.pledge); else requested.delete(row.pledge); sync(); },
        });
        boxes.push(box);
        return [{ "data-course": row.pledge }, [box,
          figure(`${row.subject} · ${t("grades", { a: row.grade_min, b: row.grade_max })}`, verified, "course"),
          row.institution, figure(row.district || t("online"), verified, "place"),
          figure(yuan(row.value_per_lesson), verified, "value-per-lesson"),
          figure(String(row.seats_left), false, "seats-left", t("servedTotal"))]];
      })));
    sync();
    courses.dataset.courses = "done";
  };
  const findButton = h("button", { type: "button", "data-find-courses": claim.claim, onclick: () => find().catch((e) => { courses.dataset.courses = "done"; courses.replaceChildren(h("p", {}, e.message)); }) }, t("findCourses"));
  // A new id each time: each choice supersedes the last, and ids are never reused.
  const id = () => `prefs.${Date.now().toString(36)}.${claim.claim}`.slice(0, 64);
  return h("div", { class: "claim-prefs", "data-claim-prefs": claim.claim },
    h("h3", {}, `${t("claim")} `, h("code", {}, claim.claim)),
    shownPreferences(current, trust.ok),
    h("fieldset", {}, h("legend", {}, t("rankedSubjects")), ...ranks),
    h("fieldset", {}, h("legend", {}, t("acceptedDistrictsBesides", { d: claim.district })), h("div", { class: "checks" }, districts)),
    h("label", { class: "check" }, online, ` ${t("acceptsOnline")}`),
    h("div", {}, findButton), courses,
    actionButtons(trust, ref, [["claim_preferences_set", claim.claim, t("sendPreferences"), () => ({ id: id(), ...chosen() })]]));
}

/**
 * The choices section: one form per claim with value not yet reserved (the ledger
 * refuses preferences on a claim with none left, `claim_closed`).
 */
export function preferencesSection(trust, ref, m, served, student, genesis) {
  const open = new Set(served.filter((c) => BigInt(c.unreserved ?? 0) > 0n).map((c) => c.claim));
  const claims = m.claims.filter((c) => open.has(c.claim));
  if (claims.length === 0) return null;
  return h("section", { class: "choices", "aria-labelledby": "choices-h" }, h("h2", { id: "choices-h" }, t("choices")),
    h("p", {}, t("choicesHint")),
    claims.map((c) => claimForm(trust, ref, c, genesis, currentPreferences(student, c.claim))));
}
