// @ts-check
/** Auto-label form, live job progress and job history. */
import { openDialog } from "./dialogs.js";
import { h, replaceChildren } from "./dom.js";

/** [value, text]: torchvision backbones (pretrained when their weights can be had), or a small CNN. */
export const BACKBONES = [
  ["resnet18", "resnet18 (pretrained if available)"],
  ["resnet50", "resnet50 (pretrained if available)"],
  ["mobilenet_v3_small", "mobilenet_v3_small (pretrained if available)"],
  ["efficientnet_b0", "efficientnet_b0 (pretrained if available)"],
  ["cnn", "small CNN trained on your images (no download)"],
];

/**
 * Check the form's values; returns the request or throws with what to fix.
 * @param {{mode: string, target_precision: string|number, backbone: string, task?: string}} form
 */
export function autoLabelRequest(form) {
  const p = Number(form.target_precision);
  if (!(p >= 0.5 && p < 1)) throw new Error("target precision must be between 0.5 and 0.999 (e.g. 0.95)");
  if (form.mode !== "fast" && form.mode !== "precise") throw new Error("mode must be fast or precise");
  const task = form.task || "classification";
  if (task !== "classification" && task !== "detection") throw new Error("task must be classification or detection");
  return { mode: form.mode, target_precision: p, backbone: form.backbone, task };
}

/**
 * One line about a job: kind, status, numbers.
 * @param {{[k: string]: any}} job
 */
export function jobSummary(job) {
  const r = job.result || {};
  const parts = [`${job.params?.mode ?? job.kind ?? "job"}`, job.status];
  if (r.proposed !== undefined) parts.push(`${r.proposed} proposed`);
  if (r.hard !== undefined) parts.push(`${r.hard} hard`);
  const skipped = typeof r.skipped === "number" ? r.skipped : Object.keys(r.skipped || {}).length;
  if (skipped) parts.push(`${skipped} skipped`);
  if (typeof r.accepted === "number") parts.push(`${r.accepted} above threshold`);
  if (typeof r.estimated_precision === "number") parts.push(`est. precision ${(r.estimated_precision * 100).toFixed(1)}%`);
  if (typeof r.seconds === "number") parts.push(`${r.seconds.toFixed(1)} s`);
  if (job.error) parts.push(String(job.error));
  return parts.filter(Boolean).join(" · ");
}

/**
 * Progress of the running job in the header (empty when none).
 * @param {HTMLElement} el
 * @param {{[k: string]: any}} job
 * @param {() => void} onCancel
 */
export function renderJob(el, job, onCancel) {
  if (!job || !job.status) return replaceChildren(el);
  const running = job.status === "running" || job.status === "queued";
  const pct = Math.round((job.progress || 0) * 100);
  replaceChildren(
    el,
    h("div", { class: "jl-progress", attrs: { role: "progressbar", "aria-valuenow": pct, "aria-valuemin": 0, "aria-valuemax": 100 } },
      h("div", { class: "jl-progress-bar", style: `width: ${pct}%` })),
    h("span", { class: "jl-job-text", text: running ? `${job.status} ${pct}% ${job.message || ""}` : jobSummary(job) }),
    running && h("button", { class: "jl-btn jl-btn-link", type: "button", text: "Cancel", on: { click: onCancel } }),
    !running && job.result?.next_step && h("div", { class: "jl-job-note jl-job-next", text: `Next: ${job.result.next_step}` }),
    !running && jobNotes(job).map((note) => h("div", { class: "jl-job-note", text: note })),
  );
}

/**
 * What a finished job wants the user to know (fallbacks, too few labels to certify, ...).
 * @param {{[k: string]: any}} job
 * @returns {string[]}
 */
export function jobNotes(job) {
  const notes = job?.result?.notes;
  return Array.isArray(notes) ? notes.map(String) : [];
}

/**
 * The Auto-label dialog: form + history.
 * @param {import("./context.js").Ctx} ctx
 */
export function openAutoLabel(ctx) {
  const mode = /** @type {HTMLSelectElement} */ (h("select", { class: "jl-select", attrs: { "aria-label": "mode" } },
    h("option", { value: "fast", text: "fast — learns from your labels only (seconds)" }),
    h("option", { value: "precise", text: "precise — also learns from unlabeled images (minutes)" })));
  const target = /** @type {HTMLInputElement} */ (h("input", { class: "jl-input", type: "number", min: "0.5", max: "0.999", step: "0.01", value: "0.95", attrs: { "aria-label": "target precision" } }));
  const task = /** @type {HTMLSelectElement} */ (h("select", { class: "jl-select", attrs: { "aria-label": "task" } },
    h("option", { value: "classification", text: "classification — a label per image" }),
    h("option", { value: "detection", text: "detection — boxes around objects" })));
  const backbone = /** @type {HTMLSelectElement} */ (h("select", { class: "jl-select", attrs: { "aria-label": "backbone" } },
    BACKBONES.map(([value, text]) => h("option", { value, text }))));
  const history = ctx.get("job_history") || [];
  const body = [
    h("p", { class: "jl-muted", text: "Trains on your labeled images and proposes labels for the unlabeled ones. Proposals go to the To Be Confirmed tab; uncertain ones are marked as hard examples." }),
    h("label", { class: "jl-field" }, "Task", task),
    h("label", { class: "jl-field" }, "Mode", mode),
    h("label", { class: "jl-field" }, "Target precision", target),
    h("label", { class: "jl-field" }, "Backbone", backbone),
    h("div", { class: "jl-subtitle", text: "History" }),
    history.length === 0
      ? h("div", { class: "jl-muted", text: "No jobs yet." })
      : h("ul", { class: "jl-history" }, history.map((/** @type {any} */ j) => h("li", {},
        h("span", { text: `${(j.created_at || "").slice(0, 19).replace("T", " ")}  ${jobSummary(j)}` }),
        jobNotes(j).map((note) => h("div", { class: "jl-muted", text: note }))))),
  ];
  return openDialog(ctx, {
    title: "Auto-label",
    body,
    buttons: [
      { label: "Cancel" },
      {
        label: "Start",
        kind: "primary",
        action: async () => {
          const req = autoLabelRequest({ mode: mode.value, target_precision: target.value, backbone: backbone.value, task: task.value });
          await ctx.call("auto_label", req, { timeout: 60000 });
          ctx.notify("auto-labeling started: progress is shown at the top");
        },
      },
    ],
  });
}
