// The JSON API (docs/web.md, docs/openapi.json): the session cookie is sent by
// the browser; every POST but the login carries X-CSRF-Token. A 401 means the
// session ended: back to the login page.
export class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

let csrf = null;
let onExpired = () => {};
export function setCsrf(token) { csrf = token; }
export function onSessionExpired(fn) { onExpired = fn; }

async function call(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method === 'POST' && path !== '/api/v1/login' && csrf) headers['X-CSRF-Token'] = csrf;
  const r = await fetch(path, { method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body) });
  let j = null;
  try { j = await r.json(); } catch (e) { /* an empty or non-JSON body */ }
  if (!r.ok) {
    const e = j && j.error ? j.error : { code: 'http_' + r.status, message: r.statusText };
    if (r.status === 401 && path !== '/api/v1/login') onExpired();
    throw new ApiError(r.status, e.code, e.message);
  }
  return j;
}

export const get = (path, params) => {
  const q = params ? new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== '')) : null;
  return call('GET', q && [...q].length ? `${path}?${q}` : path);
};
export const post = (path, body) => call('POST', path, body);
export const report = (kind, params) => get(`/api/v1/reports/${kind}`, params);
export function downloadUrl(kind, params) {
  return `/api/v1/reports/${kind}?${new URLSearchParams(params)}`;
}
