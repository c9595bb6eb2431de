// @ts-check
/** Add images: file picker and drop zone, thumbnails and sizes before OK, size limits. */
import { filesToPayload } from "./codec.js";
import { openDialog } from "./dialogs.js";
import { formatBytes, h, replaceChildren } from "./dom.js";

export const ACCEPTED = [".jpg", ".jpeg", ".png", ".bmp"];

/**
 * Check files against the accepted types and the limits; returns the problems (empty: fine).
 * @param {{name: string, size: number}[]} files
 * @param {{file: number, batch: number}} limits
 * @returns {string[]}
 */
export function checkUploads(files, limits) {
  const problems = [];
  if (files.length === 0) problems.push("choose at least one image");
  let total = 0;
  for (const f of files) {
    total += f.size;
    const dot = f.name.lastIndexOf(".");
    const ext = dot < 0 ? "" : f.name.slice(dot).toLowerCase();
    if (!ACCEPTED.includes(ext)) problems.push(`${f.name}: not a JPG, JPEG, PNG or BMP file`);
    if (f.size > limits.file) problems.push(`${f.name}: ${formatBytes(f.size)} is over the ${formatBytes(limits.file)} limit for one image`);
  }
  if (total > limits.batch) problems.push(`these ${files.length} files add up to ${formatBytes(total)}, over the ${formatBytes(limits.batch)} limit for one upload: add them in smaller batches`);
  return problems;
}

/**
 * @param {import("./context.js").Ctx} ctx
 */
export function openAddImages(ctx) {
  /** @type {File[]} */
  let files = [];
  /** @type {string[]} */
  let urls = [];
  const limits = { file: 5 * 1024 * 1024, batch: 8 * 1024 * 1024, ...(ctx.get("limits") || {}) };
  const picker = /** @type {HTMLInputElement} */ (h("input", { type: "file", multiple: true, accept: ACCEPTED.join(","), class: "jl-file", attrs: { "aria-label": "choose images" } }));
  const list = h("div", { class: "jl-upload-list" });
  const problems = h("ul", { class: "jl-problems", attrs: { role: "alert" } });
  const clear = h("button", { class: "jl-btn jl-btn-link", type: "button", text: "Clear the list", hidden: true,
    on: { click: () => { files = []; render(); } } });
  const drop = h("div", { class: "jl-drop" },
    h("div", { text: "Drop JPG, JPEG, PNG or BMP files here, or " }), picker,
    h("div", { class: "jl-muted", text: `Up to ${formatBytes(limits.file)} per image and ${formatBytes(limits.batch)} per upload.` }));
  const summary = h("span", { class: "jl-muted" });
  const render = () => {
    for (const u of urls) URL.revokeObjectURL(u);
    urls = files.map((f) => URL.createObjectURL(f));
    replaceChildren(list, files.map((f, i) =>
      h("div", { class: "jl-upload" }, h("img", { src: urls[i], alt: f.name }), h("div", { class: "jl-name", text: f.name }), h("div", { class: "jl-muted", text: formatBytes(f.size) }))));
    const found = files.length ? checkUploads(files, limits) : [];
    replaceChildren(problems, found.map((p) => h("li", { text: p })));
    dialog.buttons[1].disabled = files.length === 0 || found.length > 0;
    clear.hidden = files.length === 0;
    const total = files.reduce((n, f) => n + f.size, 0);
    summary.textContent = files.length ? `${files.length} file(s), ${formatBytes(total)} in all` : "";
  };
  /** @param {FileList|null} chosen */
  const addFiles = (chosen) => {
    files = [...files, ...Array.from(chosen || [])];
    render();
  };
  picker.addEventListener("change", () => addFiles(picker.files));
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("jl-drop-on"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("jl-drop-on"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("jl-drop-on");
    addFiles(/** @type {DragEvent} */ (ev).dataTransfer?.files ?? null);
  });
  const dialog = openDialog(ctx, {
    title: "Add images",
    className: "jl-wide",
    body: [drop, h("div", { class: "jl-row" }, summary, clear), list, problems],
    buttons: [
      { label: "Cancel", action: () => { for (const u of urls) URL.revokeObjectURL(u); } },
      {
        label: "OK",
        kind: "primary",
        action: async () => {
          const found = checkUploads(files, limits);
          if (found.length) throw new Error(found.join("; "));
          const { names, buffers } = await filesToPayload(files);
          const { reply } = await ctx.call("add_images", { names }, { buffers, timeout: 120000 });
          ctx.notify(`added ${reply.ids.length} image(s): they are in the Unlabeled tab`);
          files = [];
          render();
        },
      },
    ],
  });
  render();
  return dialog;
}
