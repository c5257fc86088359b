// The Lookout HTTP API as seen from the page: every request carries the caller's credentials.
//
// Without authentication (the embedded default) no key is needed. When the API answers 401, the user
// is asked for an API key (once, however many requests were refused), which is kept in this tab's
// sessionStorage and sent as X-API-Key on every request, the event stream included.

const KEY_STORAGE = "lookout.apiKey";

/** An API answer other than 2xx: `status` and the `detail` of its body (a string or a list). */
export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }

  /** The 422 body's problems as [{field, message}] (FastAPI's `detail` list, see services/api/errors.py). */
  get fieldErrors() {
    return Array.isArray(this.detail) ? this.detail : [];
  }
}

async function errorDetail(response) {
  try {
    const body = await response.json();
    return body.detail ?? `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status} ${response.statusText}`;
  }
}

export class LookoutApi {
  /**
   * @param {URL} base - the API root (the page lives at <root>/dashboard/)
   * @param {{tenant: string|null, askForKey: (reason: string) => Promise<string>}} options
   */
  constructor(base, { tenant, askForKey }) {
    this.base = base;
    this.tenant = tenant;
    this.askForKey = askForKey;
    this.pendingKey = null;
  }

  get apiKey() {
    return sessionStorage.getItem(KEY_STORAGE);
  }

  forgetKey() {
    sessionStorage.removeItem(KEY_STORAGE);
  }

  url(path) {
    return new URL(path, this.base).href;
  }

  /** Headers naming the caller: the API key when one was given, the tenant when the page names one. */
  authHeaders() {
    const headers = {};
    if (this.apiKey) headers["X-API-Key"] = this.apiKey;
    if (this.tenant) headers["X-Lookout-Tenant"] = this.tenant;
    return headers;
  }

  /** Ask for a key after a 401; concurrent refusals share one question. */
  async refreshKey(detail) {
    if (!this.pendingKey) {
      const reason = this.apiKey
        ? `The API refused the key in use (${detail}).`
        : `This Lookout API asks for an API key (${detail}).`;
      this.pendingKey = this.askForKey(reason).then((key) => {
        sessionStorage.setItem(KEY_STORAGE, key);
        this.pendingKey = null;
      });
    }
    await this.pendingKey;
  }

  /** fetch() with the credentials, asking for a key and retrying while the API answers 401. */
  async fetch(path, init = {}) {
    for (;;) {
      const response = await fetch(this.url(path), {
        ...init,
        headers: { ...(init.headers ?? {}), ...this.authHeaders() },
      });
      if (response.status !== 401) return response;
      await this.refreshKey(await errorDetail(response));
    }
  }

  async json(method, path, body) {
    const init = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await this.fetch(path, init);
    if (!response.ok) throw new ApiError(response.status, await errorDetail(response));
    return response.status === 204 ? null : response.json();
  }

  get(path) {
    return this.json("GET", path);
  }

  async blob(path) {
    const response = await this.fetch(path);
    if (!response.ok) throw new ApiError(response.status, await errorDetail(response));
    return response.blob();
  }
}
