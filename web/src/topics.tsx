// The account's topics and New topic.
import { useState } from "preact/hooks";
import { call, type Topic } from "./api";
import { link, navigate } from "./router";
import { Dialog, ErrorLine, Field, PageHeader, useAction, useLoad, when } from "./ui";
import { Visibility } from "./topic";

function NewTopic({ onClose }: { onClose: () => void }) {
  const [name, setName] = useState("");
  const [visibility, setVisibility] = useState<"public" | "private">("private");
  const [description, setDescription] = useState("");
  const { error, busy, run } = useAction();
  return (
    <Dialog title="New topic" onClose={onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          run(async () => {
            const topic = await call<Topic>("POST", "/api/topics", {
              name,
              visibility,
              description: description || undefined,
            });
            onClose();
            navigate(`topics/${encodeURIComponent(topic.name)}`);
          });
        }}
      >
        <Field
          label="Name"
          name="name"
          required
          hint="Letters, digits, '_' and '-', up to 64."
          onInput={setName}
        />
        <Visibility value={visibility} onChange={setVisibility} />
        <Field label="Description" name="description" hint="Optional" onInput={setDescription} />
        <ErrorLine error={error} />
        <div class="actions">
          <button type="button" class="secondary" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" disabled={busy}>
            Create topic
          </button>
        </div>
      </form>
    </Dialog>
  );
}

export function useTopics() {
  return useLoad(() => call<Topic[]>("GET", "/api/topics"));
}

export function TopicsPage({ topics }: { topics: ReturnType<typeof useTopics> }) {
  const [creating, setCreating] = useState(false);
  const origin = window.location.origin;
  return (
    <>
      <PageHeader title="Topics">
        <button type="button" onClick={() => setCreating(true)}>
          New topic
        </button>
      </PageHeader>
      <ErrorLine error={topics.error} />
      {topics.data && topics.data.length === 0 && (
        <div class="empty">
          <p>No topics yet. Create one with New topic, or publish to a new name and it is made for you:</p>
          <pre class="code">{`curl -d "Hello" ${origin}/yourtopic -H "X-API-Key: noti_…"`}</pre>
        </div>
      )}
      {topics.data && topics.data.length > 0 && (
        <ul class="topic-list">
          {topics.data.map((t) => (
            <li key={t.name}>
              <a {...link(`topics/${encodeURIComponent(t.name)}`)}>{t.name}</a>
              <span class={`badge ${t.visibility}`}>{t.visibility}</span>
              {t.description && <span class="muted">{t.description}</span>}
              <span class="muted small">{`created ${when(t.created_at)}`}</span>
            </li>
          ))}
        </ul>
      )}
      {creating && (
        <NewTopic
          onClose={() => {
            setCreating(false);
            topics.reload();
          }}
        />
      )}
    </>
  );
}
