// A topic: its messages (stored first, then live), the Publish form, browser
// notifications while the app is open, and its settings and access tokens. Every
// message field is rendered as text by Preact (never as HTML).
import { useEffect, useState } from "preact/hooks";
import { accessToken, call, enc, type AccessToken, type Message, type Topic } from "./api";
import { subscribe, type LiveState } from "./live";
import { pushEnabled, pushSupported, setPush } from "./push";
import { link, navigate } from "./router";
import {
  ago,
  Confirm,
  Dialog,
  ErrorLine,
  expiry,
  Field,
  PageHeader,
  SecretDialog,
  Table,
  useAction,
  useLoad,
  when,
} from "./ui";

const STATE_TEXT: Record<LiveState, string> = {
  connecting: "Connecting…",
  connected: "Live",
  reconnecting: "Reconnecting…",
  closed: "Closed",
};

// Notification settings are preferences, not secrets: kept per topic in this browser.
function notifyKey(topic: string) {
  return `tidings.notify.${topic}`;
}

function useNotify(topic: string) {
  const [min, setMin] = useState<number | null>(() => {
    const saved = localStorage.getItem(notifyKey(topic));
    return saved ? Number(saved) : null;
  });
  async function change(value: number | null) {
    if (value !== null && "Notification" in window && Notification.permission !== "granted") {
      if ((await Notification.requestPermission()) !== "granted") value = null;
    }
    if (value === null) localStorage.removeItem(notifyKey(topic));
    else localStorage.setItem(notifyKey(topic), String(value));
    setMin(value);
  }
  return { min, change };
}

function NotifyToggle({ topic, notify }: { topic: string; notify: ReturnType<typeof useNotify> }) {
  const supported = "Notification" in window;
  return (
    <fieldset class="notify">
      <legend class="visually-hidden">{`Notifications for ${topic}`}</legend>
      <label>
        <input
          type="checkbox"
          checked={notify.min !== null}
          disabled={!supported}
          onChange={(e) => notify.change((e.target as HTMLInputElement).checked ? 1 : null)}
        />{" "}
        Notify me
      </label>
      <PushToggle topic={topic} />
      {notify.min !== null && (
        <label>
          {"from priority "}
          <select
            value={String(notify.min)}
            onChange={(e) => notify.change(Number((e.target as HTMLSelectElement).value))}
          >
            {[1, 2, 3, 4, 5].map((p) => (
              <option value={String(p)} key={p}>
                {String(p)}
              </option>
            ))}
          </select>
        </label>
      )}
    </fieldset>
  );
}

/** "Web Push": notifications of this topic also while the app is closed. */
function PushToggle({ topic }: { topic: string }) {
  const [on, setOn] = useState(() => pushEnabled(topic));
  const { error, busy, run } = useAction();
  if (!pushSupported()) return null;
  return (
    <>
      <label>
        <input
          type="checkbox"
          checked={on}
          disabled={busy}
          onChange={(e) => {
            const want = (e.target as HTMLInputElement).checked;
            run(async () => {
              await setPush(topic, want);
              setOn(want);
            });
          }}
        />{" "}
        Web Push
      </label>
      <ErrorLine error={error} />
    </>
  );
}

export function MessageItem({ m }: { m: Message }) {
  const priority = m.priority ?? 3;
  return (
    <li class={`message p${priority}`}>
      <div class="message-head">
        {priority !== 3 && (
          <span class="priority" title={`Priority ${priority}`}>
            {`P${priority}`}
          </span>
        )}
        {m.title && <strong class="message-title">{m.title}</strong>}
        <time dateTime={new Date(m.time * 1000).toISOString()} title={new Date(m.time * 1000).toLocaleString()}>
          {ago(m.time)}
        </time>
      </div>
      <p class="message-text">{m.message}</p>
      {m.tags && m.tags.length > 0 && (
        <ul class="tags" aria-label="Message tags">
          {m.tags.map((t) => (
            <li key={t}>{t}</li>
          ))}
        </ul>
      )}
    </li>
  );
}

/** The live view of a topic; `credential` renews and returns the token for the stream. */
export function LiveMessages(props: { topic: string; credential: () => Promise<string | null> }) {
  const [messages, setMessages] = useState<Message[]>([]);
  const [state, setState] = useState<LiveState>("connecting");
  const [reason, setReason] = useState<string | undefined>();
  const notify = useNotify(props.topic);
  const [openedAt] = useState(() => Date.now() / 1000);
  useEffect(() => {
    setMessages([]);
    return subscribe(props.topic, props.credential, {
      message(m) {
        setMessages((list) => (list.some((x) => x.id === m.id) ? list : [m, ...list]));
        const min = Number(localStorage.getItem(notifyKey(props.topic)) ?? "0");
        if (min && m.time >= openedAt - 1 && (m.priority ?? 3) >= min && Notification.permission === "granted") {
          new Notification(m.title || props.topic, { body: m.message, tag: m.id });
        }
      },
      state(s, why) {
        setState(s);
        setReason(why);
      },
    });
  }, [props.topic]);
  return (
    <section aria-labelledby="messages-title">
      <div class="live-bar">
        <h2 id="messages-title">Messages</h2>
        <span class={`live ${state}`} role="status">
          {STATE_TEXT[state]}
        </span>
        <NotifyToggle topic={props.topic} notify={notify} />
      </div>
      {state === "closed" && (
        <p class="banner error" role="alert">
          {`This view was closed by the server: ${reason ?? "the stream ended"}.`}
        </p>
      )}
      {state === "reconnecting" && (
        <p class="banner">The connection was lost; reconnecting and resuming from the last message.</p>
      )}
      {messages.length === 0 ? (
        <p class="empty">No messages yet. Publish one below or with curl; it appears here at once.</p>
      ) : (
        <ul class="messages" aria-label={`Messages of ${props.topic}`}>
          {messages.map((m) => (
            <MessageItem m={m} key={m.id} />
          ))}
        </ul>
      )}
    </section>
  );
}

function PublishForm({ topic }: { topic: string }) {
  const [message, setMessage] = useState("");
  const [title, setTitle] = useState("");
  const [priority, setPriority] = useState("3");
  const [tags, setTags] = useState("");
  const [more, setMore] = useState(false);
  const { error, busy, run } = useAction();
  return (
    <form
      class="publish"
      aria-label="Publish a message"
      onSubmit={(e) => {
        e.preventDefault();
        run(async () => {
          const body: Record<string, unknown> = { topic, message };
          if (title) body.title = title;
          if (priority !== "3") body.priority = Number(priority);
          const list = tags.split(",").map((t) => t.trim()).filter(Boolean);
          if (list.length) body.tags = list;
          await call("POST", "/", body);
          setMessage("");
          (e.target as HTMLFormElement).reset();
        });
      }}
    >
      <div class="field grow">
        <label for="publish-message">Message</label>
        <textarea
          id="publish-message"
          rows={2}
          value={message}
          onInput={(e) => setMessage((e.target as HTMLTextAreaElement).value)}
        />
      </div>
      {more && (
        <div class="row">
          <Field label="Title" name="title" onInput={setTitle} />
          <div class="field">
            <label for="publish-priority">Priority</label>
            <select id="publish-priority" value={priority} onChange={(e) => setPriority((e.target as HTMLSelectElement).value)}>
              <option value="1">1 (min)</option>
              <option value="2">2 (low)</option>
              <option value="3">3 (default)</option>
              <option value="4">4 (high)</option>
              <option value="5">5 (max)</option>
            </select>
          </div>
          <Field label="Tags" name="tags" hint="Comma-separated" onInput={setTags} />
        </div>
      )}
      <ErrorLine error={error} />
      <div class="publish-foot">
        <button type="button" class="link-button" aria-expanded={more} onClick={() => setMore(!more)}>
          {more ? "Fewer options" : "More options"}
        </button>
        <button type="submit" disabled={busy}>
          Publish
        </button>
      </div>
    </form>
  );
}

function TopicSettings({ topic, onChanged }: { topic: Topic; onChanged: () => void }) {
  const [visibility, setVisibility] = useState(topic.visibility);
  const [description, setDescription] = useState(topic.description ?? "");
  const [deleting, setDeleting] = useState(false);
  const { error, busy, run } = useAction();
  const [saved, setSaved] = useState(false);
  return (
    <section aria-labelledby="settings-title">
      <h2 id="settings-title">Topic settings</h2>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setSaved(false);
          run(async () => {
            await call("PATCH", `/api/topics/${enc(topic.name)}`, { visibility, description });
            setSaved(true);
            onChanged();
          });
        }}
      >
        <Visibility value={visibility} onChange={setVisibility} />
        <Field label="Description" name="description" value={description} onInput={setDescription} />
        <ErrorLine error={error} />
        {saved && <p role="status">Saved.</p>}
        <button type="submit" disabled={busy}>
          Save
        </button>
      </form>
      <h3>Delete this topic</h3>
      <p>Its messages and access tokens are deleted, and its subscribers disconnected.</p>
      <button type="button" class="danger" onClick={() => setDeleting(true)}>
        Delete topic
      </button>
      {deleting && (
        <Confirm
          title={`Delete ${topic.name}?`}
          text={`The topic ${topic.name}, all its messages and all its access tokens will be deleted. This cannot be undone.`}
          action="Delete topic"
          onConfirm={async () => {
            await call("DELETE", `/api/topics/${enc(topic.name)}`);
            navigate("", true);
          }}
          onClose={() => setDeleting(false)}
        />
      )}
    </section>
  );
}

export function Visibility({ value, onChange }: { value: string; onChange: (v: "public" | "private") => void }) {
  return (
    <fieldset class="field">
      <legend>Visibility</legend>
      {(["public", "private"] as const).map((v) => (
        <label class="inline" key={v}>
          <input type="radio" name="visibility" value={v} checked={value === v} onChange={() => onChange(v)} />
          {v === "public" ? " Public: anyone may read" : " Private: only you and your tokens"}
        </label>
      ))}
    </fieldset>
  );
}

function CreateToken({ topic, onCreated }: { topic: string; onCreated: (t: AccessToken) => void }) {
  const [name, setName] = useState("");
  const [read, setRead] = useState(true);
  const [write, setWrite] = useState(false);
  const [expires, setExpires] = useState("");
  const { error, busy, run } = useAction();
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        run(async () => {
          const permissions = [...(read ? ["subscribe"] : []), ...(write ? ["publish"] : [])];
          const token = await call<AccessToken>("POST", `/api/topics/${enc(topic)}/access-tokens`, {
            name,
            permissions,
            expires_at: expiry(expires),
          });
          onCreated(token);
        });
      }}
    >
      <Field label="Name" name="name" required onInput={setName} />
      <fieldset class="field">
        <legend>Permissions</legend>
        <label class="inline">
          <input type="checkbox" checked={read} onChange={(e) => setRead((e.target as HTMLInputElement).checked)} /> Read
          (subscribe)
        </label>
        <label class="inline">
          <input type="checkbox" checked={write} onChange={(e) => setWrite((e.target as HTMLInputElement).checked)} />{" "}
          Write (publish)
        </label>
      </fieldset>
      <Field label="Expires" name="expires" type="datetime-local" hint="Optional" onInput={setExpires} />
      <ErrorLine error={error} />
      <div class="actions">
        <button type="submit" disabled={busy}>
          Create Token
        </button>
      </div>
    </form>
  );
}

function AccessTokens({ topic }: { topic: Topic }) {
  const tokens = useLoad(() => call<AccessToken[]>("GET", `/api/topics/${enc(topic.name)}/access-tokens`), [topic.name]);
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<AccessToken | null>(null);
  const [revoking, setRevoking] = useState<AccessToken | null>(null);
  const url = `${window.location.origin}/${topic.name}`;
  return (
    <section aria-labelledby="tokens-title">
      <div class="section-head">
        <h2 id="tokens-title">Access Tokens</h2>
        {topic.visibility === "private" && (
          <button type="button" onClick={() => setCreating(true)}>
            Create Token
          </button>
        )}
      </div>
      {topic.visibility === "public" && (
        <p class="empty">Access tokens are for private topics: make this topic private in its settings first.</p>
      )}
      <ErrorLine error={tokens.error} />
      {tokens.data && tokens.data.length === 0 && topic.visibility === "private" && (
        <p class="empty">No tokens yet. Create one to let a script or a person read or publish here.</p>
      )}
      {tokens.data && tokens.data.length > 0 && (
        <Table
          columns={["Name", "Permissions", "Created", "Expires", "Last used", "Requests"]}
          rows={tokens.data.map((t) => ({
            key: t.id,
            cells: [
              t.name,
              [t.can_read && "read", t.can_write && "write"].filter(Boolean).join(", "),
              when(t.created_at),
              when(t.expires_at),
              when(t.last_used_at),
              String(t.total_requests ?? 0),
              <button type="button" class="danger small" aria-label={`Revoke ${t.name}`} onClick={() => setRevoking(t)}>
                Revoke
              </button>,
            ],
          }))}
        />
      )}
      {creating && (
        <Dialog title="Create Token" onClose={() => setCreating(false)}>
          <CreateToken
            topic={topic.name}
            onCreated={(t) => {
              setCreating(false);
              setCreated(t);
              tokens.reload();
            }}
          />
        </Dialog>
      )}
      {created?.token && (
        <SecretDialog
          title={`Token ${created.name}`}
          secret={created.token}
          usage={
            created.can_read
              ? `curl -s "${url}/json?poll=1" -H "X-Topic-Token: ${created.token}"`
              : `curl -d "Hello" ${url} -H "X-Topic-Token: ${created.token}"`
          }
          onClose={() => setCreated(null)}
        />
      )}
      {revoking && (
        <Confirm
          title={`Revoke ${revoking.name}?`}
          text={`The token ${revoking.name} stops working at once, and every subscription opened with it is closed.`}
          action="Revoke"
          onConfirm={async () => {
            await call("DELETE", `/api/topics/${enc(topic.name)}/access-tokens/${enc(revoking.id)}`);
            tokens.reload();
          }}
          onClose={() => setRevoking(null)}
        />
      )}
    </section>
  );
}

/** The owner's topic page: `tab` is "", "settings" or "tokens". */
export function TopicPage({ name, tab }: { name: string; tab: string }) {
  const topic = useLoad(() => call<Topic>("GET", `/api/topics/${enc(name)}`), [name]);
  const base = `topics/${enc(name)}`;
  const credential = async () => {
    await call("GET", `/${enc(name)}/auth`);
    return accessToken();
  };
  return (
    <>
      <PageHeader title={name}>
        {topic.data && <span class={`badge ${topic.data.visibility}`}>{topic.data.visibility}</span>}
      </PageHeader>
      {topic.data?.description && <p class="description">{topic.data.description}</p>}
      <nav class="tabs" aria-label="Topic">
        <a {...link(base)} aria-current={tab === "" ? "page" : undefined}>
          Messages
        </a>
        <a {...link(`${base}/settings`)} aria-current={tab === "settings" ? "page" : undefined}>
          Settings
        </a>
        <a {...link(`${base}/tokens`)} aria-current={tab === "tokens" ? "page" : undefined}>
          Access Tokens
        </a>
      </nav>
      <ErrorLine error={topic.error} />
      {tab === "" && (
        <>
          <PublishForm topic={name} />
          <LiveMessages topic={name} credential={credential} />
        </>
      )}
      {tab === "settings" && topic.data && <TopicSettings topic={topic.data} onChanged={topic.reload} />}
      {tab === "tokens" && topic.data && <AccessTokens topic={topic.data} />}
    </>
  );
}

/** A topic read with an access token alone (no account). */
export function WatchedTopic({ topic, token, onLeave }: { topic: string; token: string; onLeave: () => void }) {
  const credential = async () => {
    await call("GET", `/${enc(topic)}/auth`, undefined, { Authorization: `Bearer ${token}` });
    return token;
  };
  return (
    <main class="watch" id="main">
      <PageHeader title={topic}>
        <button type="button" class="secondary" onClick={onLeave}>
          Leave
        </button>
      </PageHeader>
      <LiveMessages topic={topic} credential={credential} />
    </main>
  );
}

export { ago };
