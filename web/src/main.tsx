// The app's shell: restores the session from the refresh cookie on load, then shows
// the signed-out card or the side bar and the current page.
import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import "./style.css";
import { accessToken, call, logOut, me, onSignedOut, refresh, type Message, type Registered, type User } from "./api";
import { subscribe } from "./live";
import { LogIn, SignUp, Watch } from "./auth";
import { link, navigate, useRoute } from "./router";
import { AccountPage, ApiKeysPage, BrowserAccessPage } from "./settings";
import { TopicPage, WatchedTopic } from "./topic";
import { TopicsPage, useTopics } from "./topics";
import { SecretDialog } from "./ui";

type Session = { state: "loading" } | { state: "out" } | { state: "in"; user: User };

/**
 * Messages that arrived, per topic, while that topic's page was not open: one live
 * stream for all the account's topics, from now on.
 */
function useUnread(names: string[], open: string | null) {
  const [unread, setUnread] = useState<Record<string, number>>({});
  const current = useRef(open);
  current.current = open;
  useEffect(() => {
    if (open) setUnread((u) => ({ ...u, [open]: 0 }));
  }, [open]);
  const key = names.join(",");
  useEffect(() => {
    if (!key) return;
    const credential = async () => {
      await call("GET", `/${key}/auth`);
      return accessToken();
    };
    const count = (m: Message) => {
      if (m.topic !== current.current) setUnread((u) => ({ ...u, [m.topic]: (u[m.topic] ?? 0) + 1 }));
    };
    return subscribe(key, credential, { message: count, state: () => undefined }, false);
  }, [key]);
  return unread;
}

function SignedIn({ user, onLogOut }: { user: User; onLogOut: () => void }) {
  const route = useRoute();
  const topics = useTopics();
  const [menu, setMenu] = useState(false);
  const [page, ...rest] = route;
  const unread = useUnread(
    (topics.data ?? []).map((t) => t.name),
    page === "topics" && rest[0] ? rest[0] : null,
  );
  useEffect(() => {
    if (page === "login" || page === "signup" || page === "watch") navigate("", true);
    setMenu(false);
    topics.reload();
  }, [route.join("/")]);
  let content;
  let title;
  if (page === "topics" && rest[0]) {
    content = <TopicPage name={rest[0]} tab={rest[1] ?? ""} />;
    title = rest[0];
  } else if (page === "settings" && rest[0] === "browser") {
    content = <BrowserAccessPage />;
    title = "Browser access";
  } else if (page === "settings" && rest[0] === "account") {
    content = <AccountPage />;
    title = "Account";
  } else if (page === "settings") {
    content = <ApiKeysPage />;
    title = "API Keys";
  } else {
    content = <TopicsPage topics={topics} />;
    title = "Topics";
  }
  // Screen readers announce the page's title; never a secret in it.
  document.title = `${title} · tidings`;
  const current = (r: string) => (route.join("/") === r ? "page" : undefined);
  return (
    <div class="shell">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="sidebar">
        <div class="bar">
          <a class="brand" {...link("")}>
            tidings
          </a>
          <button type="button" class="menu-button secondary" aria-expanded={menu} aria-controls="nav" onClick={() => setMenu(!menu)}>
            Menu
          </button>
        </div>
        <nav id="nav" class={menu ? "open" : ""} aria-label="Main">
          <a {...link("")} aria-current={current("")}>
            Topics
          </a>
          {topics.data && topics.data.length > 0 && (
            <ul class="nav-topics">
              {topics.data.map((t) => (
                <li key={t.name}>
                  <a
                    {...link(`topics/${encodeURIComponent(t.name)}`)}
                    aria-current={page === "topics" && rest[0] === t.name ? "page" : undefined}
                  >
                    {t.name}
                    {(unread[t.name] ?? 0) > 0 && (
                      <span class="unread">
                        {` ${unread[t.name]}`}
                        <span class="visually-hidden"> unread</span>
                      </span>
                    )}
                  </a>
                </li>
              ))}
            </ul>
          )}
          <a {...link("settings/keys")} aria-current={page === "settings" ? "page" : undefined}>
            Settings
          </a>
          <p class="muted small who">{user.username}</p>
          <button type="button" class="secondary" onClick={onLogOut}>
            Log out
          </button>
        </nav>
      </header>
      <main id="main" tabIndex={-1}>
        {content}
      </main>
    </div>
  );
}

function SignedOut({ onSignedIn }: { onSignedIn: (r?: Registered) => void }) {
  const [page] = useRoute();
  const [watching, setWatching] = useState<{ topic: string; token: string } | null>(null);
  if (watching) return <WatchedTopic {...watching} onLeave={() => setWatching(null)} />;
  if (page === "signup") return <SignUp onSignedUp={onSignedIn} />;
  if (page === "watch") return <Watch onOpen={(topic, token) => setWatching({ topic, token })} />;
  return <LogIn onSignedIn={() => onSignedIn()} />;
}

function App() {
  const [session, setSession] = useState<Session>({ state: "loading" });
  const [firstKey, setFirstKey] = useState<string | null>(null);
  async function load() {
    try {
      setSession({ state: "in", user: await me() });
    } catch {
      setSession({ state: "out" });
    }
  }
  useEffect(() => {
    onSignedOut(() => setSession({ state: "out" }));
    refresh().then((ok) => (ok ? load() : setSession({ state: "out" })));
  }, []);
  if (session.state === "loading") return <p class="loading">Loading…</p>;
  if (session.state === "out") {
    return (
      <SignedOut
        onSignedIn={(registered) => {
          setFirstKey(registered?.api_key?.key ?? null);
          navigate("", true);
          load();
        }}
      />
    );
  }
  return (
    <>
      <SignedIn
        user={session.user}
        onLogOut={async () => {
          await logOut();
          setSession({ state: "out" });
          navigate("login", true);
        }}
      />
      {firstKey && (
        <SecretDialog
          title="Your first API key"
          secret={firstKey}
          usage={`curl -d "Hello" ${window.location.origin}/yourtopic -H "X-API-Key: ${firstKey}"`}
          onClose={() => setFirstKey(null)}
        />
      )}
    </>
  );
}

render(<App />, document.getElementById("root")!);
