// @ts-check
/** Request/response with the kernel: one anywidget command (`_request`) carrying an `op`. */

/** An action failed in the kernel (or the kernel did not answer). */
export class ApiError extends Error {
  /**
   * @param {string} message
   * @param {string} [type]
   */
  constructor(message, type = "Error") {
    super(message);
    this.name = "ApiError";
    this.type = type;
  }
}

/** Default wait for a reply, in ms (anywidget's own default, 3 s, is too short for I/O). */
export const DEFAULT_TIMEOUT = 30000;

/**
 * @typedef {(name: string, msg: any, options: {buffers?: any[], signal?: AbortSignal}) => Promise<[any, DataView[]]>} Invoke
 * @typedef {(op: string, msg?: object, options?: {buffers?: ArrayBuffer[], timeout?: number}) => Promise<{reply: any, buffers: DataView[]}>} Call
 */

/**
 * Wrap anywidget's `invoke` so every action resolves with its reply or rejects with `ApiError`.
 * @param {Invoke} invoke
 * @param {{onBusy?: (delta: number) => void}} [hooks]
 * @returns {Call}
 */
export function createApi(invoke, hooks = {}) {
  return async (op, msg = {}, options = {}) => {
    const timeout = options.timeout ?? DEFAULT_TIMEOUT;
    hooks.onBusy?.(1);
    try {
      let result;
      try {
        result = await invoke("_request", { ...msg, op }, {
          buffers: options.buffers ?? [],
          signal: AbortSignal.timeout(timeout),
        });
      } catch (err) {
        const name = /** @type {any} */ (err)?.name;
        if (name === "TimeoutError" || name === "AbortError") {
          throw new ApiError(
            `the kernel did not answer "${op}" within ${Math.round(timeout / 1000)} s ` +
              "(is it busy or restarted? re-run the cell to reconnect)",
            "Timeout",
          );
        }
        throw new ApiError(String(/** @type {any} */ (err)?.message ?? err));
      }
      const [reply, buffers] = result;
      if (reply && typeof reply === "object" && "error" in reply) {
        throw new ApiError(String(reply.error), reply.type);
      }
      return { reply, buffers: buffers ?? [] };
    } finally {
      hooks.onBusy?.(-1);
    }
  };
}
