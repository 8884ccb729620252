// Signed out: log in, sign up (a button per sign-in provider above them), and a topic
// opened with an access token alone.
import { useEffect, useState } from "preact/hooks";
import { logIn, providers, signUp, type Provider, type Registered } from "./api";
import { link, navigate } from "./router";
import { ErrorLine, Field, useAction } from "./ui";

function Providers() {
  const [list, setList] = useState<Provider[]>([]);
  useEffect(() => {
    providers().then(setList);
  }, []);
  if (list.length === 0) return null;
  return (
    <>
      <div class="providers">
        {list.map((p) => {
          const url = new URL(p.login_url, window.location.origin);
          url.searchParams.set("redirect_to", "/app/");
          return (
            <a class="button secondary" href={url.pathname + url.search} key={p.name}>
              {`Continue with ${p.label}`}
            </a>
          );
        })}
      </div>
      <p class="divider">
        <span>or</span>
      </p>
    </>
  );
}

function Card(props: { title: string; children: preact.ComponentChildren }) {
  return (
    <main class="signed-out" id="main">
      <div class="card">
        <p class="brand">tidings</p>
        <h1>{props.title}</h1>
        {props.children}
      </div>
    </main>
  );
}

export function LogIn({ onSignedIn }: { onSignedIn: () => void }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const { error, busy, run } = useAction();
  return (
    <Card title="Log in">
      <Providers />
      <form
        onSubmit={(e) => {
          e.preventDefault();
          run(async () => {
            await logIn(email, password);
            onSignedIn();
          });
        }}
      >
        <Field label="Email" name="email" type="email" autocomplete="username" required onInput={setEmail} />
        <Field
          label="Password"
          name="password"
          type="password"
          autocomplete="current-password"
          required
          onInput={setPassword}
        />
        <ErrorLine error={error} />
        <button type="submit" disabled={busy}>
          Log in
        </button>
      </form>
      <p class="switch">
        No account yet? <a {...link("signup")}>Sign up</a>
      </p>
      <p class="switch">
        Have an access token for a topic? <a {...link("watch")}>Open a topic with a token</a>
      </p>
    </Card>
  );
}

export function SignUp({ onSignedUp }: { onSignedUp: (r: Registered) => void }) {
  const [email, setEmail] = useState("");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const { error, busy, run } = useAction();
  return (
    <Card title="Sign up">
      <Providers />
      <form
        onSubmit={(e) => {
          e.preventDefault();
          run(async () => onSignedUp(await signUp(email, username, password)));
        }}
      >
        <Field label="Email" name="email" type="email" autocomplete="email" required onInput={setEmail} />
        <Field label="Username" name="username" autocomplete="username" required onInput={setUsername} />
        <Field
          label="Password"
          name="password"
          type="password"
          autocomplete="new-password"
          hint="At least 8 characters."
          required
          onInput={setPassword}
        />
        <ErrorLine error={error} />
        <button type="submit" disabled={busy}>
          Sign up
        </button>
      </form>
      <p class="switch">
        Already have an account? <a {...link("login")}>Log in</a>
      </p>
    </Card>
  );
}

/** A topic opened with its access token: the token stays in memory, out of the address. */
export function Watch({ onOpen }: { onOpen: (topic: string, token: string) => void }) {
  const [topic, setTopic] = useState("");
  const [token, setToken] = useState("");
  return (
    <Card title="Open a topic with a token">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          onOpen(topic.trim(), token.trim());
        }}
      >
        <Field label="Topic" name="topic" required onInput={setTopic} />
        <Field label="Access token" name="token" type="password" autocomplete="off" required onInput={setToken} />
        <button type="submit">Subscribe</button>
      </form>
      <p class="switch">
        <a {...link("login")}>Log in</a> instead
      </p>
    </Card>
  );
}

export function goToLogin() {
  navigate("login", true);
}
