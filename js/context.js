// @ts-check
/**
 * What components share: the model, the request function and a few app actions.
 * @typedef {{
 *   model: any,
 *   root: HTMLElement,
 *   call: import("./api.js").Call,
 *   get: (name: string) => any,
 *   set: (values: {[name: string]: any}) => void,
 *   run: (fn: () => Promise<any>) => Promise<any>,
 *   notify: (text: string, kind?: "info"|"error") => void,
 *   dialog: import("./dialogs.js").Dialog|null,
 *   openPreview: (id: string) => void,
 *   clearPixels: () => void,
 *   selectionOrFocus: () => string[],
 * }} Ctx
 * @typedef {{el: HTMLElement, update: (changed: Set<string>) => void}} Component
 */
export {};
