// @ts-check
/** The preview: a large image with its labels and the box editor over it (boxeditor.js);
 * previous/next with the arrow keys. */
import { createBoxEditor } from "./boxeditor.js";
import { bytesOf } from "./codec.js";
import { baseName, h, replaceChildren } from "./dom.js";

/**
 * @param {import("./context.js").Ctx} ctx
 * @param {() => string[]} order  ids of the page, in display order
 */
export function createPreview(ctx, order) {
  /** @type {string|null} */
  let current = null;
  let url = "";
  let token = 0;
  const info = h("div", { class: "jl-preview-info" });
  const status = h("div", { class: "jl-muted" });
  const close = () => {
    current = null;
    editor.clear();
    overlay.remove();
    if (url) URL.revokeObjectURL(url);
    url = "";
    ctx.root.focus();
  };
  const nav = (/** @type {number} */ d) => {
    const ids = order();
    const i = current ? ids.indexOf(current) : -1;
    if (i < 0) return;
    const next = ids[Math.min(ids.length - 1, Math.max(0, i + d))];
    if (next !== current) show(next);
  };
  const editor = createBoxEditor(ctx, { nav, order, open: (id) => show(id), close: () => close() });
  const overlay = h("div", { class: "jl-overlay jl-preview", on: { mousedown: (/** @type {Event} */ ev) => ev.target === overlay && close() } },
    h("div", { class: "jl-preview-box", attrs: { role: "dialog", "aria-label": "preview" } },
      h("button", { class: "jl-btn jl-btn-icon jl-preview-prev", type: "button", text: "‹", title: "previous (←)", on: { click: () => nav(-1) } }),
      h("div", { class: "jl-preview-main" }, editor.el, status, info),
      h("button", { class: "jl-btn jl-btn-icon jl-preview-next", type: "button", text: "›", title: "next (→)", on: { click: () => nav(1) } }),
      h("button", { class: "jl-btn jl-btn-icon jl-preview-close", type: "button", text: "✕", title: "close (Esc)", on: { click: close } })));
  const renderInfo = (/** @type {any} */ row) => {
    replaceChildren(info,
      h("div", { class: "jl-name", text: row?.id ?? current ?? "" }),
      h("div", { class: "jl-chips" },
        (row?.labels ?? []).map((/** @type {string} */ n) => h("span", { class: "jl-chip", text: n })),
        (row?.proposed_labels ?? []).map((/** @type {string} */ n, /** @type {number} */ i) =>
          h("span", { class: "jl-chip jl-chip-proposed", text: `${n} ${Math.round((row.proposed_scores[i] ?? 0) * 100)}%` })),
        row?.hard && h("span", { class: "jl-badge jl-badge-hard", text: "hard" })),
      row && h("div", { class: "jl-muted", text: [row.width && `${row.orig_width ?? row.width}×${row.orig_height ?? row.height}`, row.labeled_by && `labeled by ${row.labeled_by}`, row.source].filter(Boolean).join(" · ") }));
  };
  const show = async (/** @type {string} */ id) => {
    current = id;
    const mine = ++token;
    if (!overlay.isConnected) ctx.root.appendChild(overlay);
    status.textContent = `loading ${baseName(id)}…`;
    editor.begin(id);
    renderInfo(null);
    try {
      const { reply, buffers } = await ctx.call("preview", { id, size: editor.displaySize() }, { timeout: 60000 });
      if (mine !== token) return;
      if (url) URL.revokeObjectURL(url);
      url = buffers.length ? URL.createObjectURL(new Blob([bytesOf(buffers[0])], { type: reply.mime || "image/jpeg" })) : "";
      if (url) editor.show(id, url, reply.row);
      else editor.clear();
      status.textContent = reply.row?.error ?? "";
      renderInfo(reply.row);
    } catch (err) {
      if (mine === token) status.textContent = String(/** @type {any} */ (err)?.message ?? err);
    }
  };
  return {
    open: show,
    close,
    nav,
    get current() {
      return current;
    },
    refresh() {
      if (current) show(current);
    },
  };
}
