// A topic's live stream over EventSource: the stored messages first (`since=all`),
// then live ones. A dropped connection is resumed by the browser itself with
// `Last-Event-ID`; a stream the server ends (an expired access token) is reopened
// from the last message seen with a fresh credential. A stream ended for good
// (access revoked, topic deleted) is reported and not reopened.
//
// EventSource cannot send headers, so the credential goes as `?token=` on the stream's
// own request (never in the page's address; the server's access log redacts it).
import { ApiError, type Message } from "./api";

export type LiveState = "connecting" | "connected" | "reconnecting" | "closed";

export interface LiveHandlers {
  message(m: Message): void;
  state(s: LiveState, reason?: string): void;
}

/** Reasons after which the same credential may try again once renewed. */
const RENEWABLE = new Set(["Token has expired", "Server shutting down"]);

/**
 * Subscribes to `topic` (or several, comma-separated). `credential` checks that the
 * stream may be opened (renewing an access token if needed) and gives the token to
 * send; it throws the API's refusal. `stored`: replay the stored messages first.
 */
export function subscribe(
  topic: string,
  credential: () => Promise<string | null>,
  on: LiveHandlers,
  stored = true,
): () => void {
  let source: EventSource | null = null;
  let lastId: string | null = null;
  let stopped = false;
  let retry: number | undefined;

  async function open() {
    let token: string | null;
    try {
      token = await credential();
    } catch (e) {
      // Refused for good (revoked, deleted): say why; unreachable: try again later.
      if (e instanceof ApiError && e.status !== 0 && e.status < 500) {
        on.state("closed", e.detail);
      } else {
        on.state("reconnecting");
        retry = window.setTimeout(open, 3000);
      }
      return;
    }
    if (stopped) return;
    const query = new URLSearchParams();
    const since = lastId ?? (stored ? "all" : null);
    if (since) query.set("since", since);
    if (token) query.set("token", token);
    source = new EventSource(`/${encodeURIComponent(topic)}/sse?${query}`);
    on.state("connecting");
    source.addEventListener("open", () => on.state("connected"));
    source.addEventListener("message", (e) => {
      const m = JSON.parse((e as MessageEvent).data) as Message;
      lastId = m.id;
      on.message(m);
    });
    source.addEventListener("close", (e) => {
      const reason = safeReason((e as MessageEvent).data);
      source?.close();
      if (RENEWABLE.has(reason)) {
        on.state("reconnecting", reason);
        retry = window.setTimeout(open, 1000);
      } else {
        on.state("closed", reason);
      }
    });
    source.addEventListener("error", () => {
      if (source?.readyState === EventSource.CONNECTING) {
        on.state("reconnecting");
      } else if (source?.readyState === EventSource.CLOSED) {
        // The server refused the stream or it failed: the credential check in
        // `open` tells which, after a pause.
        on.state("reconnecting");
        retry = window.setTimeout(open, 3000);
      }
    });
  }

  open();
  return () => {
    stopped = true;
    window.clearTimeout(retry);
    source?.close();
  };
}

function safeReason(data: string): string {
  try {
    const parsed = JSON.parse(data);
    return typeof parsed?.message === "string" ? parsed.message : "The stream was closed";
  } catch {
    return "The stream was closed";
  }
}
