// @ts-check
/** Selection logic: toggle, shift-click ranges, page select. Pure functions over id lists. */

/**
 * Toggle one id.
 * @param {string[]} selection
 * @param {string} id
 * @returns {string[]}
 */
export function toggle(selection, id) {
  return selection.includes(id) ? selection.filter((x) => x !== id) : [...selection, id];
}

/**
 * Shift-click: select every id between `anchor` and `id` in page order (inclusive), keeping
 * the rest of the selection. Without a usable anchor it toggles `id` on.
 * @param {string[]} selection
 * @param {string[]} order  ids of the page, in display order
 * @param {string|null} anchor
 * @param {string} id
 * @returns {string[]}
 */
export function selectRange(selection, order, anchor, id) {
  const a = anchor === null ? -1 : order.indexOf(anchor);
  const b = order.indexOf(id);
  if (b < 0) return selection;
  if (a < 0) return selection.includes(id) ? selection : [...selection, id];
  const [lo, hi] = a <= b ? [a, b] : [b, a];
  const out = [...selection];
  for (const x of order.slice(lo, hi + 1)) if (!out.includes(x)) out.push(x);
  return out;
}

/**
 * Select (or, when all are selected already, unselect) every id of the page.
 * @param {string[]} selection
 * @param {string[]} order
 * @returns {string[]}
 */
export function togglePage(selection, order) {
  const all = order.length > 0 && order.every((x) => selection.includes(x));
  if (all) return selection.filter((x) => !order.includes(x));
  return [...selection, ...order.filter((x) => !selection.includes(x))];
}
