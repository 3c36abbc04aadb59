// Small DOM helpers shared by the pages: element building (text only, never HTML
// strings from the network), figures that carry their verification state, and alarms.

import { t } from "./i18n.js";

/** Builds an element: h("p", {class: "x"}, "text", child). Strings become text nodes. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/**
 * A figure with its state: `data-verified="true"` only if it was recomputed from
 * entries this page verified (and agrees with what the server says); the state is
 * also shown, not only in the attribute.
 */
export function figure(text, verified, name, why) {
  return h(
    "span",
    {
      class: verified ? "fig ok" : "fig bad",
      "data-verified": verified ? "true" : "false",
      "data-figure": name,
      title: verified ? t("verified") : why || t("unverified"),
    },
    text,
    h("span", { class: "mark", "aria-label": verified ? t("verified") : t("unverified") }, verified ? " ✓" : " ✗"),
  );
}

/**
 * A table whose cells carry their column's name (`data-label`), shown before each
 * value when a phone stacks the rows as cards. `rows` are [attrs, [cell, …]].
 */
export function table(headers, rows) {
  return h("table", {},
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map(([attrs, cells]) => h("tr", attrs, cells.map((c, i) => h("td", { "data-label": headers[i] }, c))))));
}

/** A visible alarm (role="alert") for a failed check. */
export function alarm(code, detail) {
  const key = `alarm_${code}`;
  const text = t(key) === key ? t("alarm_generic", { code }) : t(key);
  return h("div", { class: "alarm", role: "alert", "data-alarm": code }, h("strong", {}, `${t("alarm")}: `), text, detail ? h("div", { class: "detail" }, detail) : null);
}

/** The trust banner: operator key fingerprint, checkpoint, cosignatures, alarms. */
export function trustBanner(trust) {
  const box = h("section", { class: "trust", "aria-label": t("checkpoint") });
  for (const a of trust.alarms) box.append(alarm(a.code, a.detail));
  if (trust.fingerprint) {
    box.append(h("div", {}, `${t("operatorKey")}: `, h("code", { "data-fingerprint": "" }, trust.fingerprint)));
  }
  if (trust.firstUse) box.append(h("div", { class: "note" }, t("firstUse")));
  if (trust.note) {
    const cos = trust.cosigs.map((c) =>
      h("span", { class: c.state === "verified" ? "cosig ok" : "cosig bad", "data-cosig": c.state }, `${c.name}${c.state === "verified" ? " ✓" : c.state === "unknown_key" ? ` (${t("cosigNotChecked")})` : " ✗"}`),
    );
    box.append(
      h("div", {}, `${t("checkpoint")}: `, figure(`${trust.note.size} ${t("entries")}`, trust.ok, "checkpoint"),
        cos.length ? [` · ${t("cosignedBy")} `, ...cos] : null),
    );
  }
  return box;
}
