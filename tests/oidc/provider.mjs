// The OpenID Connect provider of the sign-in tests, on 127.0.0.1:$PORT.
//
// `/` is oidc-provider (OpenID Certified) with one client, `tidings-test`, and its
// development login and consent pages: any login name signs in, as an account whose
// email is that name, verified unless the name starts with `unverified`.
// `POST /admin/rotate` replaces its signing key with a new one (new `kid`).
// `/plain` is a second oidc-provider whose ID tokens carry no email: that comes from
// its userinfo endpoint.
//
// `/bad` is a second, tiny issuer that signs the ID tokens the checks must refuse:
// its authorization endpoint takes `defect=` (added by the test to the URL tidings
// sends the browser to) and puts it into the code; its token endpoint then answers
// with an ID token that has that defect (`good` has none).
//
// Prints `ready` once it listens; exits when its standard input closes (the test
// process that started it has ended).

import { createHmac, generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const base = `http://127.0.0.1:${port}`;
const clientId = 'tidings-test';
const clientSecret = 'tidings-test-secret';

// P-256 keys (ES256): made at once, where RSA keys take a while on a busy machine.
function newKey() {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, kid: randomUUID() };
}

// `email` in the ID token (as Google sends it), or (`plain`) only from userinfo, as
// the OpenID Connect rules for claims asked for by scope have it.
function provider({ privateKey, kid }, { issuer = base, name = 'test', emailInIdToken = true } = {}) {
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'ES256' };
  const oidc = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      // Native: a loopback redirect URI matches on any port (RFC 8252), and every
      // test server listens on a port of its own.
      application_type: 'native',
      redirect_uris: [`http://127.0.0.1/auth/${name}/callback`],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      id_token_signed_response_alg: 'ES256',
    }],
    jwks: { keys: [jwk] },
    cookies: { keys: ['tidings-test-cookies'] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    conformIdTokenClaims: !emailInIdToken,
    features: { devInteractions: { enabled: true } },
    async findAccount(_ctx, id) {
      return {
        accountId: id,
        async claims() {
          return { sub: id, email: id, email_verified: !id.startsWith('unverified') };
        },
      };
    },
  });
  return oidc;
}

let current = provider(newKey());
const plain = provider(newKey(), { issuer: `${base}/plain`, name: 'plain', emailInIdToken: false });

// The bad issuer: one key in its JWKS, another that it is not.
const badIssuer = `${base}/bad`;
const badKey = newKey();
const strangerKey = newKey();
const badJwks = {
  keys: [{ ...badKey.privateKey.export({ format: 'jwk' }), kid: badKey.kid, use: 'sig', alg: 'ES256' }]
    .map(({ d, ...pub }) => pub),
};

const b64 = (value) => Buffer.from(value).toString('base64url');
const encode = (header, claims) => `${b64(JSON.stringify(header))}.${b64(JSON.stringify(claims))}`;
const es256 = (input, key) => {
  const signature = sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64(signature)}`;
};

function badIdToken({ defect, nonce }) {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: badIssuer, sub: 'bad-subject', aud: clientId, exp: now + 300, iat: now, nonce,
    email: 'bad-provider-user@example.com', email_verified: true,
  };
  const header = { alg: 'ES256', typ: 'JWT', kid: badKey.kid };
  switch (defect) {
    case 'audience': return es256(encode(header, { ...claims, aud: 'someone-else' }), badKey);
    case 'nonce': return es256(encode(header, { ...claims, nonce: 'not-the-nonce' }), badKey);
    case 'expired': return es256(encode(header, { ...claims, exp: now - 300, iat: now - 900 }), badKey);
    case 'future': return es256(encode(header, { ...claims, iat: now + 600, exp: now + 900 }), badKey);
    case 'issuer': return es256(encode(header, { ...claims, iss: 'http://127.0.0.1:1/other' }), badKey);
    case 'tampered': {
      const signed = es256(encode(header, claims), badKey).split('.');
      signed[1] = b64(JSON.stringify({ ...claims, email: 'admin@example.com' }));
      return signed.join('.');
    }
    case 'unknown-key': return es256(encode({ ...header, kid: strangerKey.kid }, claims), strangerKey);
    case 'none': return `${encode({ alg: 'none', typ: 'JWT' }, claims)}.`;
    case 'hs256': {
      const input = encode({ alg: 'HS256', typ: 'JWT' }, claims);
      return `${input}.${b64(createHmac('sha256', clientSecret).update(input).digest())}`;
    }
    default: return es256(encode(header, claims), badKey);
  }
}

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function body(req) {
  let text = '';
  for await (const chunk of req) text += chunk;
  return new URLSearchParams(text);
}

async function bad(req, res, url) {
  switch (url.pathname) {
    case '/bad/.well-known/openid-configuration':
      return json(res, 200, {
        issuer: badIssuer,
        authorization_endpoint: `${badIssuer}/authorize`,
        token_endpoint: `${badIssuer}/token`,
        jwks_uri: `${badIssuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        // HS256 and none advertised too: the client must refuse them all the same.
        id_token_signing_alg_values_supported: ['ES256', 'HS256', 'none'],
      });
    case '/bad/jwks':
      return json(res, 200, badJwks);
    case '/bad/authorize': {
      const q = url.searchParams;
      const code = b64(JSON.stringify({ defect: q.get('defect') ?? 'good', nonce: q.get('nonce') }));
      const back = new URL(q.get('redirect_uri'));
      back.searchParams.set('code', code);
      back.searchParams.set('state', q.get('state'));
      res.writeHead(302, { location: back.toString() });
      return res.end();
    }
    case '/bad/token': {
      const form = await body(req);
      const code = JSON.parse(Buffer.from(form.get('code'), 'base64url').toString());
      return json(res, 200, {
        access_token: 'bad-access-token', token_type: 'Bearer', expires_in: 300,
        id_token: badIdToken(code),
      });
    }
    default:
      return json(res, 404, { error: 'not_found' });
  }
}

const server = createServer((req, res) => {
  const url = new URL(req.url, base);
  if (url.pathname.startsWith('/plain/')) {
    // Mounted as Express would mount it: the path below the prefix, the whole one kept.
    req.originalUrl = req.url;
    req.url = req.url.slice('/plain'.length);
    plain.callback()(req, res);
  } else if (url.pathname.startsWith('/bad/')) {
    bad(req, res, url).catch((e) => json(res, 500, { error: String(e) }));
  } else if (req.method === 'POST' && url.pathname === '/admin/rotate') {
    const key = newKey();
    current = provider(key);
    json(res, 200, { kid: key.kid });
  } else {
    current.callback()(req, res);
  }
});
server.listen(port, '127.0.0.1', () => console.log('ready'));
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
