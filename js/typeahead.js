// @ts-check
/** A text field with label suggestions (type-ahead) and an inline error line. */
import { h, replaceChildren } from "./dom.js";

/**
 * Suggestions for `text` among `names`: prefix matches first, then substring matches.
 * @param {string[]} names
 * @param {string} text
 * @param {number} [limit]
 */
export function suggest(names, text, limit = 8) {
  const q = text.trim().toLowerCase();
  if (!q) return names.slice(0, limit);
  const starts = names.filter((n) => n.toLowerCase().startsWith(q));
  const contains = names.filter((n) => !n.toLowerCase().startsWith(q) && n.toLowerCase().includes(q));
  return [...starts, ...contains].slice(0, limit);
}

/**
 * @param {{placeholder: string, button: string, onSubmit: (name: string) => Promise<any>|void}} spec
 */
export function createTypeahead({ placeholder, button, onSubmit }) {
  /** @type {string[]} */
  let names = [];
  let active = -1;
  const input = /** @type {HTMLInputElement} */ (
    h("input", { class: "jl-input", type: "text", placeholder, autocomplete: "off", attrs: { "aria-label": placeholder } })
  );
  const list = h("div", { class: "jl-suggest", attrs: { role: "listbox" }, hidden: true });
  const error = h("div", { class: "jl-inline-error", attrs: { role: "alert" } });
  const go = /** @type {HTMLButtonElement} */ (h("button", { class: "jl-btn jl-btn-primary", type: "button", text: button }));
  const submit = async (/** @type {string} */ name) => {
    error.textContent = "";
    list.hidden = true;
    try {
      await onSubmit(name.trim());
      input.value = "";
    } catch (err) {
      error.textContent = String(/** @type {any} */ (err)?.message ?? err);
    }
  };
  const show = () => {
    const items = suggest(names, input.value);
    active = Math.min(active, items.length - 1);
    replaceChildren(
      list,
      items.map((n, i) =>
        h("div", { class: `jl-suggest-item${i === active ? " jl-active" : ""}`, text: n, attrs: { role: "option" },
          on: { mousedown: (/** @type {Event} */ ev) => { ev.preventDefault(); submit(n); } } }),
      ),
    );
    list.hidden = items.length === 0 || document.activeElement !== input;
    return items;
  };
  input.addEventListener("input", () => {
    active = -1;
    error.textContent = "";
    show();
  });
  input.addEventListener("focus", show);
  input.addEventListener("blur", () => {
    list.hidden = true;
  });
  input.addEventListener("keydown", (ev) => {
    const items = suggest(names, input.value);
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      active = (active + (ev.key === "ArrowDown" ? 1 : -1) + items.length + 1) % (items.length + 1);
      if (active === items.length) active = -1;
      show();
    } else if (ev.key === "Enter") {
      ev.preventDefault();
      submit(active >= 0 && items[active] ? items[active] : input.value);
    }
  });
  go.addEventListener("click", () => submit(input.value));
  const el = h("div", { class: "jl-typeahead" }, h("div", { class: "jl-row" }, input, go), list, error);
  return {
    el,
    input,
    button: go,
    /** @param {string[]} next */
    setNames(next) {
      names = next;
    },
    /** @param {string} text */
    setError(text) {
      error.textContent = text;
    },
  };
}
