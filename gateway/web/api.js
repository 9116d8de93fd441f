// The REST API, as the page uses it: the session's tokens, requests that refresh an
// expired access token once and retry, and the API's errors as readable messages.
//
// Where the tokens live:
// - the access token (15 minutes) only in this module's memory: nothing a script
//   injected later could read from storage, and gone with the tab;
// - the refresh token in sessionStorage, so a reload keeps the user signed in. Not
//   localStorage: refresh tokens work once and reusing one revokes the whole family,
//   so two tabs sharing one would race each other into a sign-out. Each tab has its
//   own session instead, and closing the tab forgets it.
// The access token is renewed shortly before it expires (a fifth of its life early),
// and, should a call still meet a 401, once more before that call is retried.

import { explain } from "/assets/messages.js";

const REFRESH_KEY = "fabula.refreshToken";
/** The provider and `state` of the OpenID Connect sign-in this tab started. */
const OIDC_KEY = "fabula.oidcSignIn";

let accessToken = null;
/** When to renew the access token (ms since the epoch), from the server's `expiresIn`. */
let renewAt = 0;
let refreshing = null;
let sessionEnded = () => {};
/** Signed out on purpose (not a session that ended): reads go without a token. */
let signedOut = false;

/** An error answered by the API: `{"error": {code, status, message, details}}`. */
export class ApiError extends Error {
  constructor(httpStatus, body) {
    const error = body?.error ?? {};
    super(error.message || `the server answered ${httpStatus}`);
    this.name = "ApiError";
    this.httpStatus = httpStatus;
    this.status = error.status ?? "UNKNOWN";
    const details = Array.isArray(error.details) ? error.details : [];
    const info = details.find((d) => String(d["@type"]).endsWith("google.rpc.ErrorInfo"));
    this.reason = info?.reason ?? "";
    this.metadata = info?.metadata ?? {};
    const badRequest = details.find((d) => String(d["@type"]).endsWith("google.rpc.BadRequest"));
    this.violations = badRequest?.fieldViolations ?? [];
  }

  /** What went wrong, in a sentence or two for people (messages.js). */
  describe() {
    return explain(this);
  }
}

/** Called with a message when the session cannot be renewed any more. */
export function onSessionEnded(callback) {
  sessionEnded = callback;
}

export function hasSession() {
  return Boolean(sessionStorage.getItem(REFRESH_KEY));
}

/**
 * Reads without a token from now on, as a visitor who is not signed in: public worlds
 * answer, anything else is NOT_FOUND. Signing in ends it.
 */
export function browseSignedOut() {
  signedOut = true;
}

function keep(auth) {
  signedOut = false;
  accessToken = auth.accessToken;
  renewAt = Date.now() + Number(auth.expiresIn ?? 0) * 800;
  sessionStorage.setItem(REFRESH_KEY, auth.refreshToken);
  return auth.user;
}

function forget() {
  accessToken = null;
  sessionStorage.removeItem(REFRESH_KEY);
}

/** The calls made without an access token; every other call needs one. */
const WITHOUT_TOKEN = ["/v1/auth/register", "/v1/auth/login", "/v1/auth/logout"];

/** The session ended (its refresh token no longer works): the page should sign in again. */
export const SESSION_ENDED = "SESSION_ENDED";
const ENDED_MESSAGE = "Your session has ended. Please log in again.";

/**
 * `method path` with an optional JSON body and query; the answer's JSON, or null for
 * 204. A call that needs a token is never sent without one: when the session has
 * ended it fails with the reason SESSION_ENDED instead.
 */
export async function call(method, path, { body, query } = {}) {
  const url = query ? `${path}?${new URLSearchParams(query)}` : path;
  const anonymous = WITHOUT_TOKEN.includes(path) || path.startsWith("/v1/auth/oidc/");
  const needsToken = !anonymous && !(signedOut && method === "GET");
  if (accessToken && Date.now() >= renewAt && hasSession()) await refresh();
  if (needsToken && !accessToken) throw endedError();
  let response = await send(method, url, body);
  if (response.status === 401 && needsToken) {
    if (await refresh()) response = await send(method, url, body);
    else if (!hasSession()) throw endedError();
  }
  return read(response);
}

function endedError() {
  return new ApiError(401, {
    error: {
      status: "UNAUTHENTICATED",
      message: ENDED_MESSAGE,
      details: [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: SESSION_ENDED }],
    },
  });
}

async function send(method, url, body) {
  const headers = { Accept: "application/json" };
  if (accessToken) headers.Authorization = `Bearer ${accessToken}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  try {
    return await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch {
    throw new ApiError(0, {
      error: { status: "UNAVAILABLE", message: "cannot reach the server; check your connection" },
    });
  }
}

async function read(response) {
  if (response.status === 204) return null;
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) throw new ApiError(response.status, json);
  return json;
}

/**
 * Trades the refresh token for new tokens; true when it worked. Calls that fail
 * together share one refresh, since each refresh token works only once.
 */
export function refresh() {
  refreshing ??= (async () => {
    const refreshToken = sessionStorage.getItem(REFRESH_KEY);
    if (!refreshToken) return false;
    try {
      const auth = await read(await send("POST", "/v1/auth/refresh", { refreshToken }));
      keep(auth);
      return true;
    } catch (error) {
      if (error instanceof ApiError && error.httpStatus !== 0) {
        forget();
        sessionEnded(ENDED_MESSAGE);
      }
      return false;
    }
  })().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

/** The signed-in user after a reload, or null. */
export async function resume() {
  if (!hasSession() || !(await refresh())) return null;
  return call("GET", "/v1/users/me");
}

export async function register(username, email, password) {
  forget();
  return keep(await call("POST", "/v1/auth/register", { body: { username, email, password } }));
}

export async function login(loginName, password) {
  forget();
  return keep(await call("POST", "/v1/auth/login", { body: { login: loginName, password } }));
}

/** The OpenID Connect providers one may sign in with: `[{name, issuer}]`. */
export async function oidcProviders() {
  return (await call("GET", "/v1/auth/oidc/providers"))?.providers ?? [];
}

/**
 * Starts signing in with `provider`: the tab keeps the flow's `state` (only a callback
 * bringing it back is finished, so nobody can sign this tab in to their own account),
 * then goes to the provider.
 */
export async function startOidc(provider) {
  const started = await call("POST", `/v1/auth/oidc/${encodeURIComponent(provider)}/start`, { body: {} });
  sessionStorage.setItem(OIDC_KEY, JSON.stringify({ provider, state: started.state }));
  location.assign(started.authorizationUrl);
}

/** Finishes the sign-in the provider sent the browser back from with `code` and `state`. */
export async function finishOidc(provider, code, state) {
  const started = takeFromSession(OIDC_KEY);
  if (started?.provider !== provider || started.state !== state) {
    const details = [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "OIDC_STATE_UNKNOWN" }];
    throw new ApiError(400, { error: { status: "FAILED_PRECONDITION", message: "unknown sign-in", details } });
  }
  forget();
  const path = `/v1/auth/oidc/${encodeURIComponent(provider)}/finish`;
  return keep(await call("POST", path, { body: { code, state } }));
}

/** The JSON value this tab kept under `key`, removed once read; null when there is none or it is unreadable. */
export function takeFromSession(key) {
  let value = null;
  try {
    value = JSON.parse(sessionStorage.getItem(key) ?? "null");
  } catch {
    value = null;
  }
  sessionStorage.removeItem(key);
  return value;
}

/** Revokes the refresh token's family; the session is forgotten here whatever happens. */
export async function logout() {
  const refreshToken = sessionStorage.getItem(REFRESH_KEY);
  forget();
  // The watch cookie holds an access token; it goes with the session.
  await fetch("/v1/auth/watch-cookie", { method: "DELETE" }).catch(() => {});
  if (refreshToken) {
    await call("POST", "/v1/auth/logout", { body: { refreshToken } });
  }
}

/**
 * Puts the access token in the HttpOnly cookie an EventSource sends to
 * `/v1/jobs/{id}/watch` (it cannot send an Authorization header, and a token in the
 * URL would land in logs).
 */
export function setWatchCookie() {
  return call("POST", "/v1/auth/watch-cookie");
}

/** Every item of a paged list: `items` is the response's list field. */
export async function listAll(path, items, query = {}) {
  const all = [];
  let pageToken = "";
  do {
    const page = await call("GET", path, { query: { ...query, pageSize: "200", ...(pageToken ? { pageToken } : {}) } });
    all.push(...(page?.[items] ?? []));
    pageToken = page?.nextPageToken ?? "";
  } while (pageToken);
  return all;
}

/** `PATCH path` with `fields` (and the etag that was read): it changes exactly those. */
export function update(path, fields) {
  return call("PATCH", path, { body: fields });
}
