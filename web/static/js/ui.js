// Small shared UI pieces: tooltips with each number's formula and window, copy buttons,
// QR codes (qrcode-generator, vendored from npm).

import qrcode from "../vendor/qrcode-generator/qrcode.mjs";

/**
 * Every element with data-tip="<metric key>" (or data-tip-text="...") shows its formula and
 * window on hover, focus or tap; the text is also the element's title for screen readers
 * and for the tests.
 */
export function installTooltips(defs, root = document) {
  let tip = document.querySelector(".tooltip");
  if (!tip) {
    tip = document.createElement("div");
    tip.className = "tooltip hidden";
    tip.setAttribute("role", "tooltip");
    document.body.appendChild(tip);
  }
  const textOf = (el) => el.dataset.tipText || (defs[el.dataset.tip] ? defs[el.dataset.tip].tip : "");
  for (const el of root.querySelectorAll("[data-tip], [data-tip-text]")) {
    if (el.dataset.tipReady) continue;
    el.dataset.tipReady = "1";
    const text = textOf(el);
    if (!text) continue;
    el.setAttribute("aria-label", `${el.getAttribute("aria-label") || ""} ${text}`.trim());
    if (!el.hasAttribute("tabindex")) el.setAttribute("tabindex", "0");
    const show = () => {
      tip.textContent = text;
      tip.classList.remove("hidden");
      const r = el.getBoundingClientRect();
      const tw = Math.min(320, window.innerWidth - 16);
      const left = Math.min(window.innerWidth - tw - 8, Math.max(8, r.left));
      tip.style.left = `${left}px`;
      tip.style.maxWidth = `${tw}px`;
      const below = r.bottom + 6;
      tip.style.top = `${below}px`;
      const th = tip.getBoundingClientRect().height;
      if (below + th > window.innerHeight - 4) tip.style.top = `${Math.max(4, r.top - th - 6)}px`;
    };
    const hide = () => tip.classList.add("hidden");
    el.addEventListener("mouseenter", show);
    el.addEventListener("mouseleave", hide);
    el.addEventListener("focus", show);
    el.addEventListener("blur", hide);
    el.addEventListener("click", show);
  }
}

/** Copy text to the clipboard; says so on the button for a moment. */
export async function copyText(button, text) {
  let ok = false;
  try {
    await navigator.clipboard.writeText(text);
    ok = true;
  } catch (err) {
    // No clipboard permission (plain http on another host): select a hidden field instead.
    const ta = document.createElement("textarea");
    ta.value = text;
    ta.style.position = "fixed";
    ta.style.opacity = "0";
    document.body.appendChild(ta);
    ta.select();
    try {
      ok = document.execCommand("copy");
    } catch (err2) {
      ok = false;
    }
    ta.remove();
  }
  const old = button.textContent;
  button.textContent = ok ? "copied" : "select and copy";
  setTimeout(() => {
    button.textContent = old;
  }, 1500);
  return ok;
}

/** An SVG QR code for text (error correction M), as an element. */
export function qrSvg(text) {
  const qr = qrcode(0, "M");
  qr.addData(text);
  qr.make();
  const n = qr.getModuleCount();
  const q = 4; // quiet zone
  const size = n + 2 * q;
  let path = "";
  for (let r = 0; r < n; r += 1) {
    for (let c = 0; c < n; c += 1) if (qr.isDark(r, c)) path += `M${c + q} ${r + q}h1v1h-1z`;
  }
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${size} ${size}`);
  svg.setAttribute("shape-rendering", "crispEdges");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "QR code of the link");
  const bg = document.createElementNS(ns, "rect");
  bg.setAttribute("width", String(size));
  bg.setAttribute("height", String(size));
  bg.setAttribute("fill", "#fff");
  const p = document.createElementNS(ns, "path");
  p.setAttribute("d", path);
  p.setAttribute("fill", "#000");
  svg.append(bg, p);
  return svg;
}

/** Create an element with attributes and children. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) el.append(c);
  return el;
}
