// Shared pieces: labelled fields, errors in words, dialogs (native <dialog>: focus stays
// inside, Escape closes), secrets shown once with a copy button, times.
import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "./api";

export function errorText(e: unknown): string {
  if (e instanceof ApiError) return e.detail;
  return e instanceof Error ? e.message : String(e);
}

/** Runs `action`, keeping its error in words for the form that caused it. */
export function useAction() {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  async function run(action: () => Promise<void>) {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  }
  return { error, busy, run, setError };
}

/** Loads something once (and again on `reload`), with its error in words. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[] = []) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    load().then(
      (d) => live && (setData(d), setError(null)),
      (e) => live && setError(errorText(e)),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return { data, error, reload: () => setTick((t) => t + 1) };
}

export function ErrorLine({ error, id }: { error: string | null; id?: string }) {
  if (!error) return null;
  return (
    <p class="error" role="alert" id={id}>
      {error}
    </p>
  );
}

let fieldCount = 0;

export function Field(props: {
  label: string;
  name: string;
  type?: "text" | "email" | "password" | "datetime-local";
  value?: string;
  required?: boolean;
  autocomplete?: string;
  hint?: string;
  placeholder?: string;
  minLength?: number;
  onInput?: (value: string) => void;
}) {
  const [id] = useState(() => `f${++fieldCount}`);
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      <input
        id={id}
        name={props.name}
        // Preact's types narrow attributes by input type; these all accept the same ones.
        type={(props.type ?? "text") as "text"}
        value={props.value}
        required={props.required}
        minLength={props.minLength}
        autoComplete={props.autocomplete}
        placeholder={props.placeholder}
        aria-describedby={props.hint ? `${id}-hint` : undefined}
        onInput={(e) => props.onInput?.((e.target as HTMLInputElement).value)}
      />
      {props.hint && (
        <small id={`${id}-hint`} class="hint">
          {props.hint}
        </small>
      )}
    </div>
  );
}

/** A modal dialog: opened while mounted; Escape or `onClose` ends it. */
export function Dialog(props: { title: string; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current!;
    if (!dialog.open) dialog.showModal();
    return () => dialog.close();
  }, []);
  return (
    <dialog ref={ref} aria-labelledby="dialog-title" onClose={props.onClose}>
      <h2 id="dialog-title">{props.title}</h2>
      {props.children}
    </dialog>
  );
}

/** Asks once, naming what will be lost. */
export function Confirm(props: {
  title: string;
  text: string;
  action: string;
  onConfirm: () => Promise<void>;
  onClose: () => void;
}) {
  const { error, busy, run } = useAction();
  return (
    <Dialog title={props.title} onClose={props.onClose}>
      <p>{props.text}</p>
      <ErrorLine error={error} />
      <div class="actions">
        <button type="button" class="secondary" onClick={props.onClose}>
          Cancel
        </button>
        <button
          type="button"
          class="danger"
          disabled={busy}
          onClick={() =>
            run(async () => {
              await props.onConfirm();
              props.onClose();
            })
          }
        >
          {props.action}
        </button>
      </div>
    </Dialog>
  );
}

export function CopyButton({ text, label = "Copy" }: { text: string; label?: string }) {
  const [done, setDone] = useState(false);
  return (
    <button
      type="button"
      class="secondary"
      onClick={async () => {
        try {
          await navigator.clipboard.writeText(text);
          setDone(true);
        } catch {
          setDone(false);
        }
      }}
    >
      {done ? "Copied" : label}
      <span class="visually-hidden" role="status">
        {done ? " to the clipboard" : ""}
      </span>
    </button>
  );
}

/** A secret shown once: monospace, a copy button, a warning, and how to use it. */
export function SecretDialog(props: { title: string; secret: string; usage?: string; onClose: () => void }) {
  return (
    <Dialog title={props.title} onClose={props.onClose}>
      <p class="warning">Copy it now: it will not be shown again.</p>
      <pre class="secret" data-secret>
        {props.secret}
      </pre>
      <div class="actions start">
        <CopyButton text={props.secret} />
      </div>
      {props.usage && (
        <>
          <p>Use it like this:</p>
          <pre class="code">{props.usage}</pre>
        </>
      )}
      <div class="actions">
        <button type="button" onClick={props.onClose}>
          Done
        </button>
      </div>
    </Dialog>
  );
}

export function when(iso: string | null | undefined, never = "never"): string {
  if (!iso) return never;
  return new Date(iso).toLocaleString();
}

export function ago(unixSeconds: number): string {
  const s = Math.max(0, Math.round(Date.now() / 1000 - unixSeconds));
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(unixSeconds * 1000).toLocaleDateString();
}

/** The datetime-local value as RFC 3339, or null when empty. */
export function expiry(local: string): string | null {
  return local ? new Date(local).toISOString() : null;
}

export function PageHeader(props: { title: string; children?: ComponentChildren }) {
  return (
    <header class="page-header">
      <h1>{props.title}</h1>
      <div class="page-actions">{props.children}</div>
    </header>
  );
}

/** A list as a table: one row per item, the last cell holding the row's actions. */
export function Table(props: { columns: string[]; rows: { key: string; cells: ComponentChildren[] }[] }) {
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            {props.columns.map((c) => (
              <th scope="col" key={c}>
                {c}
              </th>
            ))}
            <th scope="col">
              <span class="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {props.rows.map((row) => (
            <tr key={row.key}>
              {row.cells.map((cell, i) => (
                <td key={i} class={i === row.cells.length - 1 ? "row-actions" : undefined}>
                  {cell}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
