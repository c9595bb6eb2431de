// @ts-check
/** Header (tabs with counts, dataset actions, job progress) and the page/selection bar. */
import { openAddImages } from "./addimages.js";
import { openAutoLabel, renderJob } from "./autolabel.js";
import { deleteImagesDialog, helpDialog, reportDialog } from "./dialogs.js";
import { h, replaceChildren } from "./dom.js";
import { togglePage } from "./selection.js";
import { openVersions } from "./versions.js";

export const TABS = [
  ["all", "All"],
  ["unlabeled", "Unlabeled"],
  ["labeled", "Labeled"],
  ["to_confirm", "To Be Confirmed"],
];
export const PAGE_SIZES = [24, 48, 96, 192];

/**
 * @param {import("./context.js").Ctx} ctx
 * @returns {import("./context.js").Component}
 */
export function createHeader(ctx) {
  const tabs = h("div", { class: "jl-tabs", attrs: { role: "tablist" } });
  const job = h("div", { class: "jl-job" });
  const btn = (/** @type {string} */ text, /** @type {string} */ title, /** @type {() => any} */ fn, cls = "") =>
    h("button", { class: `jl-btn ${cls}`, type: "button", text, title, on: { click: fn } });
  const actions = h(
    "div",
    { class: "jl-actions" },
    btn("Auto-label", "train on your labels and propose labels for the rest", () => openAutoLabel(ctx), "jl-btn-primary"),
    btn("Add images", "upload JPG, PNG or BMP files", () => openAddImages(ctx)),
    btn("Sync", "synchronize with the data source (new or removed files, .txt/.xml labels)", () =>
      ctx.run(async () => {
        const { reply } = await ctx.call("sync", {}, { timeout: 600000 });
        ctx.clearPixels();
        const lines = Object.entries(reply.report ?? {}).map(([k, v]) => /** @type {[string, string]} */ ([k, Array.isArray(v) ? String(v.length) : String(v)]));
        reportDialog(ctx, "Synchronized with the data source", lines.length ? lines : [["result", reply.text]]);
      }),
    ),
    btn("Versions", "list, create and use dataset versions", () => openVersions(ctx)),
    btn("Undo", "undo the last operation (Ctrl+Z)", () => ctx.run(() => ctx.call("undo"))),
    btn("?", "keyboard shortcuts", () => helpDialog(ctx), "jl-btn-icon"),
  );
  const el = h("div", { class: "jl-header" }, tabs, job, actions);
  const update = (/** @type {Set<string>} */ changed) => {
    if (changed.has("counts") || changed.has("tab")) {
      const counts = ctx.get("counts") || {};
      const current = ctx.get("tab");
      replaceChildren(
        tabs,
        TABS.map(([key, text]) =>
          h(
            "button",
            {
              class: `jl-tab${key === current ? " jl-tab-on" : ""}`,
              type: "button",
              dataset: { tab: key },
              attrs: { role: "tab", "aria-selected": key === current ? "true" : "false" },
              on: { click: () => ctx.set({ tab: key }) },
            },
            text,
            h("span", { class: "jl-count", text: String(counts[key] ?? 0) }),
          ),
        ),
      );
    }
    if (changed.has("job")) renderJob(job, ctx.get("job") || {}, () => ctx.run(() => ctx.call("cancel_job")));
  };
  return { el, update };
}

/**
 * Selection counter, page selection, delete, pager and page size.
 * @param {import("./context.js").Ctx} ctx
 * @returns {import("./context.js").Component}
 */
export function createPageBar(ctx) {
  const counter = h("span", { class: "jl-counter" });
  const pageIds = () => (ctx.get("rows") || []).map((/** @type {any} */ r) => r.id);
  const selectPage = h("button", { class: "jl-btn", type: "button", text: "Select page", title: "select / unselect every image of this page (A)",
    on: { click: () => ctx.set({ selection: togglePage(ctx.get("selection"), pageIds()) }) } });
  const clear = h("button", { class: "jl-btn", type: "button", text: "Clear", title: "clear the selection (Esc)",
    on: { click: () => ctx.set({ selection: [] }) } });
  const del = /** @type {HTMLButtonElement} */ (h("button", { class: "jl-btn jl-btn-danger", type: "button", text: "Delete",
    title: "delete the selected images", on: { click: () => deleteImagesDialog(ctx, ctx.get("selection")) } }));
  const prev = /** @type {HTMLButtonElement} */ (h("button", { class: "jl-btn jl-btn-icon", type: "button", text: "‹", title: "previous page ([)",
    on: { click: () => ctx.set({ page: Math.max(0, ctx.get("page") - 1) }) } }));
  const next = /** @type {HTMLButtonElement} */ (h("button", { class: "jl-btn jl-btn-icon", type: "button", text: "›", title: "next page (])",
    on: { click: () => ctx.set({ page: ctx.get("page") + 1 }) } }));
  const where = h("span", { class: "jl-where" });
  const size = /** @type {HTMLSelectElement} */ (h("select", { class: "jl-select", title: "images per page",
    on: { change: () => ctx.set({ page_size: Number(size.value) }) } },
    PAGE_SIZES.map((n) => h("option", { value: String(n), text: `${n} / page` }))));
  const el = h("div", { class: "jl-pagebar" }, selectPage, clear, counter, del, h("span", { class: "jl-spacer" }), where, prev, next, size);
  const update = () => {
    const n = (ctx.get("selection") || []).length;
    counter.textContent = `${n} selected`;
    del.disabled = n === 0;
    const total = ctx.get("total") || 0;
    const pageSize = ctx.get("page_size") || 48;
    const page = ctx.get("page") || 0;
    const pages = Math.max(1, Math.ceil(total / pageSize));
    const first = total ? page * pageSize + 1 : 0;
    where.textContent = `${first}–${Math.min(total, (page + 1) * pageSize)} of ${total} · page ${page + 1} / ${pages}`;
    prev.disabled = page <= 0;
    next.disabled = page + 1 >= pages;
    size.value = String(pageSize);
  };
  return { el, update };
}
