// @ts-check
/** Tiny DOM builder. Strings always become text nodes: no user data ever goes through innerHTML. */

/** @typedef {{[key: string]: any}} Props */
/** @typedef {Node | string | number | null | undefined | false | any[]} Child  (arrays nest) */

/**
 * Create an element.
 * Props: `class`, `text`, `title`, `on` ({event: handler}), `attrs` ({name: value}), `dataset`,
 * and any other key is set as a DOM property (e.g. `type`, `value`, `checked`, `disabled`).
 * @param {string} tag
 * @param {Props} [props]
 * @param {...Child} children
 * @returns {HTMLElement}
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = String(value);
    else if (key === "on") {
      for (const [ev, fn] of Object.entries(value)) el.addEventListener(ev, fn);
    } else if (key === "attrs") {
      for (const [name, v] of Object.entries(value)) {
        if (v !== undefined && v !== null && v !== false) el.setAttribute(name, v === true ? "" : String(v));
      }
    } else if (key === "dataset") {
      for (const [name, v] of Object.entries(value)) el.dataset[name] = String(v);
    } else {
      /** @type {any} */ (el)[key] = value;
    }
  }
  append(el, children);
  return el;
}

/**
 * Append children (text for strings and numbers; arrays flattened; empty values skipped).
 * @param {Node} parent
 * @param {Child[]} children
 */
export function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else if (typeof child === "string" || typeof child === "number") {
      parent.appendChild(document.createTextNode(String(child)));
    } else parent.appendChild(child);
  }
}

/**
 * Replace all children of `parent`.
 * @param {Node} parent
 * @param {...Child} children
 */
export function replaceChildren(parent, ...children) {
  while (parent.firstChild) parent.removeChild(parent.firstChild);
  append(parent, children);
}

/**
 * Human-readable byte size.
 * @param {number} n
 */
export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / (1024 * 1024)).toFixed(2)} MB`;
}

/**
 * The file name part of a sample id (`a/b/c.png` -> `c.png`).
 * @param {string} id
 */
export function baseName(id) {
  const i = id.lastIndexOf("/");
  return i < 0 ? id : id.slice(i + 1);
}
