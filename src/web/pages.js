// The other pages: home (find a student), the pool (/pool) and the association's
// audit (/audit). The pool's totals are the `meta/pool` object, verified when its state
// proof checks against the signed state note; the in-browser audit then replays the
// entries they come from and compares; the charts are drawn only from verified entries.

import { establishTrust, getJSON, provenObject, rememberAssociation, verifyState } from "./api.js";
import { panel, shareBars } from "./charts.js";
import { t, yuan } from "./i18n.js";
import { cosignForm } from "./keys.js";
import { checkpointHistory } from "./checkpoints.js";
import { alarm, figure, h, table, trustBanner } from "./ui.js";

export function homePage(root) {
  const input = h("input", { type: "text", name: "ref", "aria-label": t("home"), placeholder: "stu-000000", required: true });
  root.replaceChildren(
    h("h1", {}, t("title")),
    h("form", { class: "find", onsubmit: (e) => { e.preventDefault(); location.href = `/students/${encodeURIComponent(input.value.trim())}`; } },
      h("label", {}, t("home"), " ", input), h("button", { type: "submit" }, t("open"))),
    h("p", {}, h("a", { href: "/pool" }, t("pool")), " · ", h("a", { href: "/audit" }, t("audit"))),
  );
}

function cards(items) {
  return h("div", { class: "cards" }, items.map(([label, value, verified, name]) => h("div", { class: "card" }, label, h("span", { class: "big" }, figure(value, verified, name)))));
}

/**
 * Runs the audit worker; `onProgress(done, size)`. Resolves to its result, remembering
 * the audited checkpoint (next audit demands consistency from it) and the association
 * keys it read from verified entries (to check cosignatures on the family page).
 */
export function runAudit(trust, summarize, onProgress) {
  const lastKey = `ll.audit.${trust.info.origin}`;
  const last = JSON.parse(localStorage.getItem(lastKey) || "null");
  const worker = new Worker("/web/audit-worker.js", { type: "module" });
  return new Promise((resolve, reject) => {
    worker.onmessage = (ev) => {
      const m = ev.data;
      if (m.progress) onProgress(m.progress.done, m.progress.size);
      if (m.error) { worker.terminate(); reject(Object.assign(new Error(m.error.message), { code: m.error.code })); }
      if (m.done) {
        worker.terminate();
        localStorage.setItem(lastKey, JSON.stringify({ size: m.done.size, root: m.done.root }));
        for (const [name, vkey] of Object.entries(m.done.summary ? m.done.summary.associations : {})) rememberAssociation(name, vkey);
        resolve(m.done);
      }
    };
    worker.postMessage({ vkey: trust.vkey, origin: trust.info.origin, last, summarize });
  });
}

function auditControls(trust, summarize, onDone) {
  const bar = h("progress", { max: 1, value: 0, "aria-label": t("auditRun") });
  const out = h("div", { role: "status", "data-audit": "idle" });
  const button = h("button", {
    type: "button", "data-run-audit": "", disabled: !trust.ok,
    onclick: async () => {
      button.disabled = true;
      out.dataset.audit = "running";
      try {
        const r = await runAudit(trust, summarize, (done, size) => { bar.max = size; bar.value = done; });
        out.dataset.audit = "pass";
        out.dataset.sigsPerSec = r.sigsPerSec;
        out.dataset.signatures = r.signatures;
        out.dataset.seconds = r.seconds.toFixed(1);
        out.replaceChildren(figure(t("auditDone", { n: r.size, s: r.sigsPerSec }), true, "audit"));
        onDone(r);
      } catch (e) {
        out.dataset.audit = "fail";
        out.replaceChildren(alarm(e.code, t("auditFail", { e: e.message })));
      }
    },
  }, t("auditRun"));
  return h("div", {}, button, bar, out);
}

/** Draws the verified summary's charts into `charts`; marks the served totals it confirms. */
function drawSummary(root, charts, pool, sum, poolOk) {
  const districts = Object.entries(sum.byDistrict).map(([label, v]) => ({ label, whole: v.owed, part: v.madeGood })).sort((a, b) => b.whole - a.whole);
  const subjects = Object.entries(sum.bySubject).map(([label, v]) => ({ label, whole: v.pledged, part: v.delivered })).sort((a, b) => b.whole - a.whole);
  charts.replaceChildren(
    h("h2", {}, t("byDistrict")),
    shareBars(districts, { title: t("byDistrict"), wholeClass: "bar-owed", partClass: "bar-good", wholeLabel: t("owed"), partLabel: t("madeGood") }),
    h("h2", {}, t("bySubject")),
    shareBars(subjects, { title: t("bySubject"), wholeClass: "bar-pledged", partClass: "bar-delivered", wholeLabel: t("pledged"), partLabel: t("delivered") }),
    h("h2", {}, t("pool")),
    panel(sum.timeline.map(([i, p]) => [i, p]), { title: t("pledged"), cls: "bar-pledged", xLabel: t("entries") }),
    panel(sum.timeline.map(([i, , d]) => [i, d]), { title: t("delivered"), cls: "bar-delivered", xLabel: t("entries") }),
  );
  const liabilities = root.querySelector("[data-liabilities]");
  if (liabilities) liabilities.replaceWith(liabilityTable(sum.byInstitution));
  for (const [name, value, served] of [["pledged", sum.pledged, "pledged"], ["delivered", sum.delivered, "delivered"], ["owed", sum.owed, "claims_value"]]) {
    const el = root.querySelector(`[data-figure="${name}"]`);
    if (el && pool) el.replaceWith(figure(yuan(value), poolOk && value === pool[served], name));
  }
}

/** The pool object (`GET /v1/pool`), its state proof checked: {pool, ok, failures}. */
async function provenPool(trust) {
  const answer = await getJSON("/v1/pool");
  const state = await verifyState(trust, answer);
  return { pool: answer.pool.object, ok: provenObject({ state }, "meta", "pool"), failures: state.failures };
}

/**
 * Per-institution liabilities from the audit's verified entries (the claims recorded
 * against each institution, and what was made good on them), largest first.
 */
function liabilityTable(byInstitution) {
  const rows = Object.entries(byInstitution).sort((a, b) => b[1].owed - a[1].owed);
  return h("section", { "data-liabilities": "done" }, h("h2", {}, t("liabilities")), table(
    [t("institutionCol"), t("owed"), t("madeGood"), t("outstanding")],
    rows.map(([id, v]) => [{ "data-institution": id }, [
      h("a", { href: `/institutions/${encodeURIComponent(id)}` }, id),
      figure(yuan(v.owed), true, "owed"), figure(yuan(v.madeGood), true, "made-good"), figure(yuan(v.owed - v.madeGood), true, "outstanding"),
    ]])));
}

export async function poolPage(root) {
  const trust = await establishTrust();
  const { pool, ok, failures } = await provenPool(trust);
  const charts = h("div", {});
  const draw = (r) => drawSummary(root, charts, pool, r.summary, ok);
  root.replaceChildren(
    trustBanner(trust),
    ...failures.map((f) => alarm(f.code, f.detail)),
    h("h1", {}, t("pool")),
    cards([[t("pledged"), yuan(pool.pledged), ok, "pledged"], [t("reserved"), yuan(pool.reserved), ok, "reserved"], [t("delivered"), yuan(pool.delivered), ok, "delivered"], [t("owed"), yuan(pool.claims_value), ok, "owed"]]),
    auditControls(trust, true, draw),
    charts,
  );
}

export async function auditPage(root) {
  const trust = await establishTrust();
  // Before genesis there is no pool (503): nothing to show.
  const { pool, ok, failures } = await provenPool(trust).catch(() => ({ pool: null, ok: false, failures: [] }));
  const charts = h("div", {});
  root.replaceChildren(
    trustBanner(trust),
    ...failures.map((f) => alarm(f.code, f.detail)),
    h("h1", {}, t("audit")),
    pool ? cards([[t("pledged"), yuan(pool.pledged), ok, "pledged"], [t("delivered"), yuan(pool.delivered), ok, "delivered"], [t("owed"), yuan(pool.claims_value), ok, "owed"], [t("coverage"), `${((pool.claims_consumed / Math.max(1, pool.claims_value)) * 100).toFixed(1)}%`, ok, "coverage"]]) : null,
    h("h2", {}, t("checkpoints")),
    h("pre", { class: "checkpoint" }, trust.note ? trust.note.body : ""),
    checkpointHistory(trust),
    auditControls(trust, true, (r) => drawSummary(root, charts, pool, r.summary, ok)),
    h("div", { "data-liabilities": "" }),
    charts,
    cosignForm(trust),
  );
}
