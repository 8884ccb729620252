// The API client: every call goes through `call`, which adds the access token (kept in
// memory only, never in web storage), refreshes it once on a 401, and turns an error
// answer into an `ApiError` carrying the server's own words.

export class ApiError extends Error {
  constructor(
    public status: number,
    public detail: string,
  ) {
    super(detail);
  }
}

export interface User {
  id: string;
  email: string;
  username: string;
  tier?: string;
}

interface Tokens {
  access_token: string;
  refresh_token?: string;
  user?: User;
}

// The refresh token lives in the `tidings_refresh` cookie (HttpOnly) when the server
// honours `X-Tidings-Session: cookie`; a server that answers with it in the body
// instead gets it back from memory, so a silent refresh works either way.
const COOKIE_SESSION = { "X-Tidings-Session": "cookie" };
let access: string | null = null;
let refreshToken: string | null = null;
let signedOutListener: () => void = () => {};

export function accessToken(): string | null {
  return access;
}

export function onSignedOut(listener: () => void) {
  signedOutListener = listener;
}

function keep(tokens: Tokens) {
  access = tokens.access_token;
  refreshToken = tokens.refresh_token ?? null;
}

function forget() {
  access = null;
  refreshToken = null;
}

async function detailOf(res: Response): Promise<string> {
  try {
    const body = await res.json();
    if (typeof body?.detail === "string") return body.detail;
    if (Array.isArray(body?.detail)) return body.detail.map((d: { msg?: string }) => d.msg ?? "").join("; ");
  } catch {
    // Not JSON: fall back to the status line.
  }
  return res.statusText || `HTTP ${res.status}`;
}

async function send(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const h: Record<string, string> = { Accept: "application/json", ...headers };
  if (access && !h.Authorization) h.Authorization = `Bearer ${access}`;
  let payload: BodyInit | undefined;
  if (typeof body === "string") {
    payload = body;
  } else if (body !== undefined) {
    h["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  try {
    return await fetch(path, { method, headers: h, body: payload, credentials: "same-origin" });
  } catch {
    throw new ApiError(0, "The server cannot be reached");
  }
}

async function parse<T>(res: Response): Promise<T> {
  if (!res.ok) throw new ApiError(res.status, await detailOf(res));
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

/** One API call; a 401 while signed in refreshes the access token once and retries. */
export async function call<T = unknown>(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<T> {
  let res = await send(method, path, body, headers);
  if (res.status === 401 && access) {
    if (await refresh()) {
      res = await send(method, path, body, headers);
    } else {
      forget();
      signedOutListener();
    }
  }
  return parse<T>(res);
}

let refreshing: Promise<boolean> | null = null;

/** A new access token from the refresh cookie (or the token in memory); one at a time. */
export function refresh(): Promise<boolean> {
  refreshing ??= (async () => {
    const body = refreshToken ? { refresh_token: refreshToken } : {};
    const res = await fetch("/auth/refresh", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", ...COOKIE_SESSION },
      body: JSON.stringify(body),
      credentials: "same-origin",
    }).catch(() => null);
    if (!res?.ok) return false;
    keep(await res.json());
    return true;
  })().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

export type Me = User & { tier: string; publish_limit: number | null; publish_remaining: number | null };

export async function me(): Promise<Me> {
  return call("GET", "/api/me");
}

export async function logIn(email: string, password: string): Promise<void> {
  keep(await parse<Tokens>(await send("POST", "/auth/login", { email, password }, COOKIE_SESSION)));
}

export interface Registered extends Tokens {
  api_key?: { key: string; name: string };
}

export async function signUp(email: string, username: string, password: string): Promise<Registered> {
  const answer = await parse<Registered>(
    await send("POST", "/auth/register", { email, username, password }, COOKIE_SESSION),
  );
  keep(answer);
  return answer;
}

export async function logOut(): Promise<void> {
  const body = refreshToken ? { refresh_token: refreshToken } : {};
  await send("POST", "/auth/logout", body, COOKIE_SESSION).catch(() => undefined);
  forget();
}

export interface Provider {
  name: string;
  label: string;
  login_url: string;
}

/** The sign-in providers; none when the server has no such list. */
export async function providers(): Promise<Provider[]> {
  const res = await fetch("/auth/providers", { headers: { Accept: "application/json" } }).catch(() => null);
  if (!res?.ok) return [];
  const list = await res.json().catch(() => []);
  return Array.isArray(list) ? list : [];
}

export interface Message {
  id: string;
  time: number;
  event: string;
  topic: string;
  message: string;
  title?: string;
  priority?: number;
  tags?: string[];
}

export interface Topic {
  name: string;
  visibility: "public" | "private";
  description: string | null;
  created_at: string;
}

export interface AccessToken {
  id: string;
  token?: string;
  name: string;
  topic: string;
  permissions: string[];
  can_read: boolean;
  can_write: boolean;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  total_requests?: number;
}

export interface ApiKey {
  id: string;
  key?: string;
  name: string;
  prefix: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  active: boolean;
}

export interface ClientAuth {
  client_key: string;
  security_mode: boolean;
  signing_key: { id: string; public_key_pem: string; created_at: string } | null;
  allowed_origins: string[];
}

export const enc = encodeURIComponent;
