// @ts-check
/** The message line: errors stay until dismissed, information fades after a few seconds. */
import { h, replaceChildren } from "./dom.js";

export function createNotices() {
  const el = h("div", { class: "jl-notices", attrs: { "aria-live": "polite" } });
  /** @type {any} */
  let timer = null;
  return {
    el,
    /**
     * @param {string} text
     * @param {"info"|"error"} [kind]
     */
    show(text, kind = "info") {
      clearTimeout(timer);
      const close = h("button", { class: "jl-x", type: "button", text: "×", title: "dismiss", on: { click: () => replaceChildren(el) } });
      replaceChildren(el, h("div", { class: `jl-notice jl-notice-${kind}`, attrs: { role: kind === "error" ? "alert" : "status" } }, h("span", { text }), close));
      if (kind !== "error") timer = setTimeout(() => replaceChildren(el), 5000);
    },
    clear() {
      replaceChildren(el);
    },
  };
}
