// Settings: API Keys, Browser access and Account.
import { useState } from "preact/hooks";
import { call, enc, me, type ApiKey, type ClientAuth } from "./api";
import { link } from "./router";
import {
  Confirm,
  CopyButton,
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

export function SettingsNav({ current }: { current: string }) {
  const item = (route: string, text: string) => (
    <a {...link(route)} aria-current={current === route ? "page" : undefined}>
      {text}
    </a>
  );
  return (
    <nav class="tabs" aria-label="Settings">
      {item("settings/keys", "API Keys")}
      {item("settings/browser", "Browser access")}
      {item("settings/account", "Account")}
    </nav>
  );
}

function CreateKey({ onCreated }: { onCreated: (k: ApiKey) => void }) {
  const [name, setName] = useState("");
  const [expires, setExpires] = useState("");
  const { error, busy, run } = useAction();
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        run(async () => onCreated(await call<ApiKey>("POST", "/api/keys", { name, expires_at: expiry(expires) })));
      }}
    >
      <Field label="Name" name="name" required onInput={setName} />
      <Field label="Expires" name="expires" type="datetime-local" hint="Optional" onInput={setExpires} />
      <ErrorLine error={error} />
      <div class="actions">
        <button type="submit" disabled={busy}>
          Create API Key
        </button>
      </div>
    </form>
  );
}

export function ApiKeysPage() {
  const keys = useLoad(() => call<ApiKey[]>("GET", "/api/keys"));
  const [creating, setCreating] = useState(false);
  const [shown, setShown] = useState<ApiKey | null>(null);
  const [asking, setAsking] = useState<{ key: ApiKey; what: "Regenerate" | "Revoke" } | null>(null);
  const origin = window.location.origin;
  return (
    <>
      <PageHeader title="API Keys">
        <button type="button" onClick={() => setCreating(true)}>
          Create API Key
        </button>
      </PageHeader>
      <SettingsNav current="settings/keys" />
      <p>An API key acts for your whole account: publish, subscribe and manage, from scripts and servers.</p>
      <ErrorLine error={keys.error} />
      {keys.data && keys.data.length === 0 && <p class="empty">No API keys. Create one for each script or server.</p>}
      {keys.data && keys.data.length > 0 && (
        <Table
          columns={["Name", "Prefix", "Created", "Expires", "Last used"]}
          rows={keys.data.map((k) => ({
            key: k.id,
            cells: [
              k.name,
              <code>{`noti_${k.prefix}…`}</code>,
              when(k.created_at),
              when(k.expires_at),
              when(k.last_used_at),
              <>
                <button
                  type="button"
                  class="secondary small"
                  aria-label={`Regenerate ${k.name}`}
                  onClick={() => setAsking({ key: k, what: "Regenerate" })}
                >
                  Regenerate
                </button>
                <button
                  type="button"
                  class="danger small"
                  aria-label={`Revoke ${k.name}`}
                  onClick={() => setAsking({ key: k, what: "Revoke" })}
                >
                  Revoke
                </button>
              </>,
            ],
          }))}
        />
      )}
      {creating && (
        <Dialog title="Create API Key" onClose={() => setCreating(false)}>
          <CreateKey
            onCreated={(k) => {
              setCreating(false);
              setShown(k);
              keys.reload();
            }}
          />
        </Dialog>
      )}
      {/* Once the confirmation has closed: one dialog at a time. */}
      {shown?.key && !asking && (
        <SecretDialog
          title={`API key ${shown.name}`}
          secret={shown.key}
          usage={`curl -d "Hello" ${origin}/yourtopic -H "X-API-Key: ${shown.key}"`}
          onClose={() => setShown(null)}
        />
      )}
      {asking && (
        <Confirm
          title={`${asking.what} ${asking.key.name}?`}
          text={
            asking.what === "Regenerate"
              ? `A new secret replaces ${asking.key.name}'s; the old one stops working at once.`
              : `${asking.key.name} stops working at once, for every script that uses it.`
          }
          action={asking.what}
          onConfirm={async () => {
            const id = enc(asking.key.id);
            if (asking.what === "Regenerate") {
              setShown(await call<ApiKey>("POST", `/api/keys/${id}/regenerate`));
            } else {
              await call("DELETE", `/api/keys/${id}`);
            }
            keys.reload();
          }}
          onClose={() => setAsking(null)}
        />
      )}
    </>
  );
}

interface SigningKey {
  private_key_pem: string;
}

export function BrowserAccessPage() {
  const settings = useLoad(() => call<ClientAuth>("GET", "/api/client-auth"));
  const mode = useAction();
  const origins = useAction();
  const [originsText, setOriginsText] = useState<string | null>(null);
  const [confirming, setConfirming] = useState(false);
  const [signing, setSigning] = useState<SigningKey | null>(null);
  const [saved, setSaved] = useState(false);
  const data = settings.data;
  return (
    <>
      <PageHeader title="Browser access">
        <button type="button" onClick={() => setConfirming(true)}>
          Generate signing key
        </button>
      </PageHeader>
      <SettingsNav current="settings/browser" />
      <p>Web pages of yours subscribe with your client key and a user key your server signs.</p>
      <ErrorLine error={settings.error} />
      {data && (
        <>
          <section aria-labelledby="client-key-title">
            <h2 id="client-key-title">Client key</h2>
            <p>Safe to ship in your web pages.</p>
            <div class="copy-row">
              <code>{data.client_key}</code>
              <CopyButton text={data.client_key} label="Copy client key" />
            </div>
          </section>
          <section aria-labelledby="mode-title">
            <h2 id="mode-title">Security mode</h2>
            <label class="inline">
              <input
                type="checkbox"
                checked={data.security_mode}
                onChange={(e) => {
                  const on = (e.target as HTMLInputElement).checked;
                  mode.run(async () => {
                    await call("PATCH", "/api/client-auth", { security_mode: on });
                    settings.reload();
                  });
                }}
              />{" "}
              Secure mode
            </label>
            <p class="hint">
              {data.security_mode
                ? "On: a user key must be an RS256 token signed with your signing key, naming the topics it may read."
                : "Off (development): any user id with your client key may read every topic of yours. Not for production."}
            </p>
            <ErrorLine error={mode.error} />
          </section>
          <section aria-labelledby="signing-title">
            <h2 id="signing-title">Signing key</h2>
            <p>
              {data.signing_key
                ? `Active since ${when(data.signing_key.created_at)}. Generating a new one ends every user key signed with this one.`
                : "None yet: generate one, keep its private key on your server, and sign user keys with it."}
            </p>
          </section>
          <section aria-labelledby="origins-title">
            <h2 id="origins-title">Allowed origins</h2>
            <form
              onSubmit={(e) => {
                e.preventDefault();
                setSaved(false);
                const list = (originsText ?? data.allowed_origins.join("\n"))
                  .split("\n")
                  .map((o) => o.trim())
                  .filter(Boolean);
                origins.run(async () => {
                  await call("PUT", "/api/client-auth/allowed-origins", { origins: list });
                  setSaved(true);
                  settings.reload();
                });
              }}
            >
              <div class="field">
                <label for="origins">Origins, one a line</label>
                <textarea
                  id="origins"
                  rows={3}
                  placeholder="https://app.example.com"
                  value={originsText ?? data.allowed_origins.join("\n")}
                  onInput={(e) => setOriginsText((e.target as HTMLTextAreaElement).value)}
                />
                <small class="hint">Empty: any origin may use your client key.</small>
              </div>
              <ErrorLine error={origins.error} />
              {saved && <p role="status">Saved.</p>}
              <button type="submit" disabled={origins.busy}>
                Save origins
              </button>
            </form>
          </section>
        </>
      )}
      {confirming && (
        <Confirm
          title="Generate signing key?"
          text={
            data?.signing_key
              ? "A new key pair replaces the current one: every user key signed with the old key stops working at once."
              : "A new RS256 key pair is made; its private key is shown once."
          }
          action="Generate signing key"
          onConfirm={async () => {
            setSigning(await call<SigningKey>("POST", "/api/client-auth/signing-key"));
            settings.reload();
          }}
          onClose={() => setConfirming(false)}
        />
      )}
      {signing && !confirming && (
        <SecretDialog title="Private signing key" secret={signing.private_key_pem} onClose={() => setSigning(null)} />
      )}
    </>
  );
}

export function AccountPage() {
  const account = useLoad(me);
  const limit = account.data?.publish_limit ?? null;
  return (
    <>
      <PageHeader title="Account" />
      <SettingsNav current="settings/account" />
      <ErrorLine error={account.error} />
      {account.data && (
        <>
          <dl class="facts">
            <dt>Email</dt>
            <dd>{account.data.email}</dd>
            <dt>Username</dt>
            <dd>{account.data.username}</dd>
            <dt>Tier</dt>
            <dd>{account.data.tier}</dd>
            <dt>Publish limit</dt>
            <dd>{limit === null ? "unlimited" : `${limit} messages per minute`}</dd>
            <dt>Left this minute</dt>
            <dd>{limit === null ? "unlimited" : `${account.data.publish_remaining} of ${limit}`}</dd>
          </dl>
          {limit !== null && (
            <button type="button" class="secondary" onClick={() => account.reload()}>
              Check again
            </button>
          )}
        </>
      )}
    </>
  );
}
