// @ts-check
/** The widget: wires the model (traits), the request API and the components together. */
import { ApiError, createApi } from "./api.js";
import { decodeThumbnails } from "./codec.js";
import { helpDialog } from "./dialogs.js";
import { h } from "./dom.js";
import { createFilters } from "./filters.js";
import { columns, fillImages, renderGrid, updateSelection } from "./grid.js";
import { actionFor, moveFocus } from "./keyboard.js";
import { applyTo, createLabelPanel } from "./labelpanel.js";
import { createNotices } from "./notices.js";
import { PixelCache } from "./pixels.js";
import { createPreview } from "./preview.js";
import { selectRange, toggle, togglePage } from "./selection.js";
import { createHeader, createPageBar } from "./toolbar.js";

const TRAITS = ["tab", "filters", "page", "page_size", "selection", "counts", "total", "labels", "users", "groups",
  "versions", "rows", "revision", "job", "job_history", "estimated_precision", "sample_check", "label_next", "limits", "notice"];
/** Pages of pixels kept in the browser. */
const PAGES_KEPT = 3;
const THUMB_TIMEOUT = 120000;
const REFRESH_EVERY = 20000;

/**
 * @param {{model: any, el: HTMLElement, invoke: import("./api.js").Invoke}} args
 */
export function createApp({ model, el, invoke }) {
  let busy = 0;
  const spinner = h("span", { class: "jl-busy", text: "working…", hidden: true });
  const call = createApi(invoke, {
    onBusy: (d) => {
      busy += d;
      spinner.hidden = busy <= 0;
    },
  });
  const quiet = createApi(invoke);
  const root = h("div", { class: "jl-root", tabIndex: 0, attrs: { "data-lm-suppress-shortcuts": "true" } });
  const pixels = new PixelCache(PAGES_KEPT * (model.get("page_size") || 48));
  /** @type {Map<string, any>} rows seen lately, for the labels of a selection spanning pages */
  const known = new Map();
  let focus = -1;
  /** @type {string|null} */
  let anchor = null;
  let thumbToken = 0;

  const notices = createNotices();
  /** @type {any} */
  const ctx = {
    model,
    root,
    call,
    dialog: null,
    get: (/** @type {string} */ name) => model.get(name),
    set(/** @type {{[k: string]: any}} */ values) {
      for (const [k, v] of Object.entries(values)) model.set(k, v);
      model.save_changes();
    },
    async run(/** @type {() => Promise<any>} */ fn) {
      try {
        return await fn();
      } catch (err) {
        notices.show(err instanceof ApiError || err instanceof Error ? err.message : String(err), "error");
      }
    },
    notify: (/** @type {string} */ text, /** @type {"info"|"error"} */ kind = "info") => notices.show(text, kind),
    openPreview: (/** @type {string} */ id) => preview.open(id),
    clearPixels: () => {
      pixels.clear();
      loadThumbnails();
    },
    selectionOrFocus() {
      const sel = model.get("selection") || [];
      if (sel.length) return sel;
      const row = (model.get("rows") || [])[focus];
      return row ? [row.id] : [];
    },
    rowOf: (/** @type {string} */ id) => known.get(id),
  };
  const pageIds = () => (model.get("rows") || []).map((/** @type {any} */ r) => r.id);
  const preview = createPreview(ctx, pageIds);
  const header = createHeader(ctx);
  header.el.appendChild(spinner);
  const filters = createFilters(ctx);
  const pagebar = createPageBar(ctx);
  const panel = createLabelPanel(ctx);
  const grid = h("div", { class: "jl-grid", attrs: { role: "grid", "aria-label": "images" } });
  root.append(header.el, filters.el, notices.el, pagebar.el, h("div", { class: "jl-main" }, grid, panel.el));
  el.appendChild(root);

  const onCheck = (/** @type {string} */ id, /** @type {MouseEvent} */ ev) => {
    const sel = model.get("selection") || [];
    ctx.set({ selection: ev.shiftKey ? selectRange(sel, pageIds(), anchor, id) : toggle(sel, id) });
    anchor = id;
  };
  const gridView = () => ({
    tab: model.get("tab"),
    selection: new Set(model.get("selection") || []),
    focus,
    pixels: (/** @type {string} */ id) => pixels.get(id),
    onCheck,
    onOpen: (/** @type {string} */ id) => preview.open(id),
    onFocus: (/** @type {number} */ i) => {
      focus = i;
      updateSelection(grid, new Set(model.get("selection") || []), focus);
    },
  });

  async function loadThumbnails() {
    const ids = pageIds();
    const missing = ids.filter((/** @type {string} */ id) => !pixels.has(id));
    ids.forEach((/** @type {string} */ id) => pixels.get(id)); // mark the page as most recent
    if (missing.length === 0) return;
    const mine = ++thumbToken;
    await ctx.run(async () => {
      const { reply, buffers } = await call("thumbnails", { ids: missing }, { timeout: THUMB_TIMEOUT });
      const got = decodeThumbnails(reply, buffers);
      for (const p of got) pixels.put(p);
      if (mine === thumbToken || got.some((p) => pageIds().includes(p.id))) fillImages(grid, got);
    });
  }

  /** @type {Set<string>} */
  let pending = new Set();
  const flush = () => {
    const changed = pending;
    pending = new Set();
    if (changed.has("page_size")) pixels.resize(PAGES_KEPT * (model.get("page_size") || 48));
    if (changed.has("rows")) {
      for (const row of model.get("rows") || []) known.set(row.id, row);
      while (known.size > 5000) known.delete(known.keys().next().value);
      focus = Math.min(focus, (model.get("rows") || []).length - 1);
    }
    if (changed.has("tab") || changed.has("page")) focus = -1;
    if (changed.has("tab")) anchor = null;
    header.update(changed);
    filters.update(changed);
    pagebar.update(changed);
    panel.update(changed);
    if (["rows", "tab", "revision"].some((k) => changed.has(k))) {
      renderGrid(grid, model.get("rows") || [], gridView());
      loadThumbnails();
    } else if (changed.has("selection")) {
      updateSelection(grid, new Set(model.get("selection") || []), focus);
    }
    if (changed.has("notice")) {
      const n = model.get("notice") || {};
      if (n.text) notices.show(n.text, n.kind === "error" ? "error" : "info");
    }
  };
  /** @type {[string, () => void][]} */
  const listeners = TRAITS.map((name) => [
    `change:${name}`,
    () => {
      if (pending.size === 0) queueMicrotask(flush);
      pending.add(name);
    },
  ]);
  for (const [event, fn] of listeners) model.on(event, fn);

  const focusCell = () => {
    updateSelection(grid, new Set(model.get("selection") || []), focus);
    const cell = grid.querySelectorAll(".jl-cell")[focus];
    /** @type {HTMLElement|undefined} */ (cell)?.scrollIntoView?.({ block: "nearest" });
  };

  root.addEventListener("keydown", (ev) => {
    const action = actionFor(ev);
    if (!action) return;
    if (ctx.dialog) {
      if (action.type === "escape") {
        ctx.dialog.close();
        ev.preventDefault();
        ev.stopPropagation();
      }
      return;
    }
    ev.preventDefault();
    ev.stopPropagation();
    const rows = model.get("rows") || [];
    if (preview.current) {
      if (action.type === "escape") preview.close();
      else if (action.type === "move") preview.nav(action.dx || action.dy);
      else if (action.type === "undo") ctx.run(() => call("undo"));
      else if (action.type === "label") {
        const name = (model.get("labels") || [])[action.index]?.name;
        const id = preview.current;
        const verb = model.get("tab") === "to_confirm" ? "set_proposal" : "label";
        if (name) ctx.run(async () => { await call(verb, { ids: [id], names: [name] }); preview.refresh(); });
      }
      return;
    }
    switch (action.type) {
      case "label": {
        const name = (model.get("labels") || [])[action.index]?.name;
        if (!name) return notices.show(`there is no label ${action.index + 1}: add labels in the panel on the right`, "error");
        ctx.run(() => applyTo(ctx, name));
        break;
      }
      case "move":
        focus = moveFocus(focus, action.dx, action.dy, columns(grid), rows.length);
        focusCell();
        break;
      case "toggle":
        if (rows[focus]) {
          ctx.set({ selection: toggle(model.get("selection") || [], rows[focus].id) });
          anchor = rows[focus].id;
        }
        break;
      case "preview":
        if (rows[Math.max(focus, 0)]) preview.open(rows[Math.max(focus, 0)].id);
        break;
      case "escape":
        ctx.set({ selection: [] });
        break;
      case "undo":
        ctx.run(() => call("undo"));
        break;
      case "help":
        helpDialog(ctx);
        break;
      case "page": {
        const pages = Math.max(1, Math.ceil((model.get("total") || 0) / (model.get("page_size") || 48)));
        const page = Math.min(pages - 1, Math.max(0, (model.get("page") || 0) + action.delta));
        if (page !== model.get("page")) ctx.set({ page });
        break;
      }
      case "selectPage":
        ctx.set({ selection: togglePage(model.get("selection") || [], pageIds()) });
        break;
      case "confirm":
      case "reject":
        if (model.get("tab") === "to_confirm" && (model.get("selection") || []).length) {
          ctx.run(() => call(action.type, { ids: model.get("selection") }));
        }
        break;
    }
  });

  // Another kernel may change the dataset: pick that up now and then (quietly). These pings
  // also tell the kernel this view is alive: a widget no view has pinged for a while stops
  // recomputing its page on every change, and catches up on its next request.
  const ping = () => {
    if (document.visibilityState === "visible" && root.isConnected) quiet("refresh").catch(() => {});
  };
  const timer = setInterval(ping, REFRESH_EVERY);
  document.addEventListener("visibilitychange", ping);

  pending = new Set(TRAITS);
  flush();
  return {
    root,
    ctx,
    pixels,
    destroy() {
      clearInterval(timer);
      document.removeEventListener("visibilitychange", ping);
      for (const [event, fn] of listeners) model.off(event, fn);
      preview.close();
      pixels.clear();
      root.remove();
    },
  };
}
