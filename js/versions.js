// @ts-check
/** Versions: list them, create one, set one as current. */
import { openDialog } from "./dialogs.js";
import { h } from "./dom.js";

/**
 * @param {import("./context.js").Ctx} ctx
 */
export function openVersions(ctx) {
  const versions = ctx.get("versions") || [];
  const name = /** @type {HTMLInputElement} */ (h("input", { class: "jl-input", type: "text", placeholder: "name (optional)", attrs: { "aria-label": "version name" } }));
  const desc = /** @type {HTMLInputElement} */ (h("input", { class: "jl-input", type: "text", placeholder: "description", attrs: { "aria-label": "version description" } }));
  const table = h("table", { class: "jl-table" },
    h("tr", {}, h("th", { text: "Version" }), h("th", { text: "Created" }), h("th", { text: "Images" }), h("th", { text: "Description" }), h("th", {})),
    versions.map((/** @type {any} */ v) =>
      h("tr", {},
        h("td", { text: `${v.name}${v.current ? " (current)" : ""}` }),
        h("td", { text: String(v.created_at ?? "").slice(0, 19).replace("T", " ") }),
        h("td", { text: String(v.samples ?? v.count ?? v.n_samples ?? "") }),
        h("td", { text: String(v.description ?? "") }),
        h("td", {}, v.current ? null : h("button", { class: "jl-btn", type: "button", text: "Set as current",
          on: { click: () => ctx.run(async () => { await ctx.call("use_version", { name: v.name }, { timeout: 120000 }); ctx.dialog?.close(); ctx.notify(`now using version ${v.name}`); }) } })),
      )),
  );
  return openDialog(ctx, {
    title: "Versions",
    className: "jl-wide",
    body: [
      versions.length ? table : h("div", { class: "jl-muted", text: "No versions yet." }),
      h("div", { class: "jl-subtitle", text: "Create a version of the current state" }),
      h("div", { class: "jl-row" }, name, desc),
    ],
    buttons: [
      { label: "Close" },
      { label: "Create version", kind: "primary", action: async () => {
        await ctx.call("create_version", { name: name.value.trim() || null, description: desc.value }, { timeout: 120000 });
        ctx.notify("version created");
      } },
    ],
  });
}
