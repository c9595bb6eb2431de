// @ts-check
/** The keyboard map: a key event -> an action. Pure, so it is tested without a DOM. */

/**
 * @typedef {{type: "label", index: number} | {type: "move", dx: number, dy: number} |
 *   {type: "toggle"} | {type: "preview"} | {type: "escape"} | {type: "undo"} | {type: "help"} |
 *   {type: "page", delta: number} | {type: "selectPage"} | {type: "confirm"} | {type: "reject"}} Action
 */

/** Shortcuts as the help popover lists them: [keys, what they do]. */
export const SHORTCUTS = [
  ["1 – 9", "apply label 1–9 of the label list to the selected images (or to the focused one)"],
  ["1 – 9 (To Be Confirmed)", "set the proposal of the selection to that label (then confirm)"],
  ["← ↑ → ↓", "move the focus in the grid; in the preview: previous / next image"],
  ["Space", "select / unselect the focused image"],
  ["Shift + click", "select the range from the last clicked image"],
  ["A", "select / unselect the whole page"],
  ["Enter", "open the preview of the focused image"],
  ["Esc", "close the preview or dialog; otherwise clear the selection"],
  ["[  ]  or PgUp / PgDn", "previous / next page"],
  ["C / R (To Be Confirmed)", "confirm / reject the selected proposals"],
  ["Ctrl + Z", "undo the last operation"],
  ["?", "show this help"],
];

/**
 * Is the event typed into a text field (where keys must keep their normal meaning)?
 * @param {EventTarget|null} target
 */
export function isTyping(target) {
  const el = /** @type {HTMLElement|null} */ (target);
  if (!el || !el.tagName) return false;
  const tag = el.tagName.toLowerCase();
  if (tag === "textarea" || tag === "select" || el.isContentEditable) return true;
  if (tag !== "input") return false;
  const type = (/** @type {HTMLInputElement} */ (el).type || "text").toLowerCase();
  return !["checkbox", "radio", "button", "submit", "range", "file"].includes(type);
}

/**
 * Map a keydown to an action, or null when the key is not ours.
 * @param {{key: string, ctrlKey?: boolean, metaKey?: boolean, altKey?: boolean, shiftKey?: boolean, target?: EventTarget|null}} ev
 * @returns {Action|null}
 */
export function actionFor(ev) {
  const typing = isTyping(ev.target ?? null);
  if (ev.key === "Escape") return { type: "escape" };
  if (typing) return null;
  const mod = ev.ctrlKey || ev.metaKey;
  if (mod && !ev.altKey && (ev.key === "z" || ev.key === "Z") && !ev.shiftKey) return { type: "undo" };
  if (mod || ev.altKey) return null;
  if (/^[1-9]$/.test(ev.key)) return { type: "label", index: Number(ev.key) - 1 };
  switch (ev.key) {
    case "ArrowLeft":
      return { type: "move", dx: -1, dy: 0 };
    case "ArrowRight":
      return { type: "move", dx: 1, dy: 0 };
    case "ArrowUp":
      return { type: "move", dx: 0, dy: -1 };
    case "ArrowDown":
      return { type: "move", dx: 0, dy: 1 };
    case " ":
    case "Spacebar":
      return { type: "toggle" };
    case "Enter":
      return { type: "preview" };
    case "?":
      return { type: "help" };
    case "[":
    case "PageUp":
      return { type: "page", delta: -1 };
    case "]":
    case "PageDown":
      return { type: "page", delta: 1 };
    case "a":
    case "A":
      return { type: "selectPage" };
    case "c":
    case "C":
      return { type: "confirm" };
    case "r":
    case "R":
      return { type: "reject" };
    default:
      return null;
  }
}

/**
 * New focus index after an arrow move in a grid of `count` cells, `cols` per row (clamped).
 * @param {number} index  current focus (-1: none yet)
 * @param {number} dx
 * @param {number} dy
 * @param {number} cols
 * @param {number} count
 */
export function moveFocus(index, dx, dy, cols, count) {
  if (count <= 0) return -1;
  if (index < 0) return 0;
  const next = index + dx + dy * Math.max(1, cols);
  return Math.min(count - 1, Math.max(0, next));
}
