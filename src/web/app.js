// The web app's entry point: reads the path, renders the page (zh-CN first, English one
// click away), and nothing else. Plain ES modules, no build step; every module is
// served from this origin (the Content-Security-Policy allows nothing else).

import { lang, setLang, t } from "./i18n.js";
import { alarm } from "./ui.js";

// Each page's module is loaded when its route is visited, so that a family's first view
// carries no other page's code.
function route(path) {
  let m;
  if ((m = /^\/students\/([^/]+)$/.exec(path))) return async () => (await import("./family.js")).familyPage(main, decodeURIComponent(m[1]));
  if ((m = /^\/institutions\/([^/]+)$/.exec(path))) return async () => (await import("./institution.js")).institutionPage(main, decodeURIComponent(m[1]));
  if (path === "/pool") return async () => (await import("./pages.js")).poolPage(main);
  if (path === "/audit") return async () => (await import("./pages.js")).auditPage(main);
  return async () => (await import("./pages.js")).homePage(main);
}

const main = document.getElementById("main");

function chrome() {
  document.documentElement.lang = lang() === "zh" ? "zh-CN" : "en";
  document.title = t("title");
  const names = { home: t("title"), pool: t("pool"), audit: t("audit") };
  for (const a of document.querySelectorAll("[data-nav]")) a.textContent = names[a.dataset.nav];
  document.getElementById("lang").textContent = t("lang");
}

async function render() {
  chrome();
  try {
    await route(location.pathname)();
  } catch (e) {
    main.append(alarm(e.code || "error", e.message));
  }
  document.body.dataset.ready = "true";
}

document.getElementById("lang").addEventListener("click", () => {
  setLang(lang() === "zh" ? "en" : "zh");
  document.body.dataset.ready = "false";
  render();
});

render();
