// The app's routes: paths under /app/, changed with the History API. No secret ever
// enters a path or a query.
import { useEffect, useState } from "preact/hooks";

export const BASE = "/app/";

function current(): string {
  const path = window.location.pathname;
  return path.startsWith(BASE) ? path.slice(BASE.length).replace(/\/$/, "") : "";
}

const listeners = new Set<() => void>();
window.addEventListener("popstate", () => listeners.forEach((l) => l()));

// A click on a push notification, told by the service worker: show its topic here.
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.addEventListener("message", (e: MessageEvent) => {
    const open: unknown = e.data?.open;
    if (typeof open === "string" && open.startsWith(BASE)) navigate(open.slice(BASE.length));
  });
  navigator.serviceWorker.startMessages();
}

export function navigate(route: string, replace = false) {
  const url = BASE + route;
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  listeners.forEach((l) => l());
  window.scrollTo(0, 0);
}

/** The route, as path segments after /app/. */
export function useRoute(): string[] {
  const [route, setRoute] = useState(current());
  useEffect(() => {
    const update = () => setRoute(current());
    listeners.add(update);
    return () => listeners.delete(update);
  }, []);
  return route ? route.split("/").map(decodeURIComponent) : [];
}

/** Props for an in-app link: a real `href` (so it opens in a new tab too), pushState on click. */
export function link(route: string) {
  return {
    href: BASE + route,
    onClick: (e: MouseEvent) => {
      if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      navigate(route);
    },
  };
}
