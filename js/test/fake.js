// Test doubles: an anywidget-like model and an invoke that answers from handlers.

export class FakeModel {
  constructor(state) {
    this.state = { ...state };
    this.handlers = new Map();
    this.saved = 0;
  }
  get(key) {
    return this.state[key];
  }
  set(key, value) {
    this.state[key] = value;
    for (const fn of this.handlers.get(`change:${key}`) ?? []) fn();
  }
  save_changes() {
    this.saved += 1;
  }
  on(event, fn) {
    if (!this.handlers.has(event)) this.handlers.set(event, []);
    this.handlers.get(event).push(fn);
  }
  off(event, fn) {
    this.handlers.set(event, (this.handlers.get(event) ?? []).filter((f) => f !== fn));
  }
}

export function rows(n, prefix = "img") {
  return Array.from({ length: n }, (_, i) => ({
    id: `${prefix}-${i}.png`, labels: [], hard: false, missing: false, corrupt: false,
    proposed_labels: [], proposed_scores: [],
  }));
}

export function baseState(overrides = {}) {
  return {
    tab: "all", filters: {}, page: 0, page_size: 48, selection: [],
    counts: { all: 6, unlabeled: 6, labeled: 0, to_confirm: 0 }, total: 6,
    labels: [{ name: "cat", count: 0 }, { name: "dog", count: 0 }], users: [], groups: [], versions: [],
    rows: rows(6), revision: 1, job: {}, job_history: [], estimated_precision: null,
    limits: { file: 5 * 1024 * 1024, batch: 8 * 1024 * 1024 }, notice: {},
    ...overrides,
  };
}

/** invoke that records calls and answers with `handlers[op](msg, buffers)` (default: ok). */
export function fakeInvoke(handlers = {}) {
  const calls = [];
  const invoke = async (name, msg, options = {}) => {
    calls.push({ name, msg, buffers: options.buffers ?? [] });
    const handler = handlers[msg.op];
    if (handler) return handler(msg, options.buffers ?? []);
    if (msg.op === "thumbnails") {
      return [{ items: msg.ids.map((id) => ({ id, mime: "image/jpeg", width: 8, height: 8 })) },
        msg.ids.map(() => new DataView(new Uint8Array([0xff, 0xd8, 0xff, 0xd9]).buffer))];
    }
    return [{ ok: true }, []];
  };
  return { invoke, calls };
}

export function stubUrls() {
  let n = 0;
  const revoked = [];
  URL.createObjectURL = () => `blob:test/${++n}`;
  URL.revokeObjectURL = (u) => revoked.push(u);
  return revoked;
}

export const tick = () => new Promise((r) => setTimeout(r, 0));
