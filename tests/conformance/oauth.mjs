// openid-client v6 against the hub's authorization server: discovery (RFC 8414),
// client_credentials with ClientSecretBasic or PrivateKeyJwt, then introspection before
// and after revocation. Reads {"issuer", "clientId", "secret"?, "privateJwk"?} on stdin;
// prints {"scope", "activeBefore", "activeAfter", "clientIdIntrospected", "metadata"}.
import * as client from 'openid-client';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const { issuer, clientId, secret, privateJwk } = JSON.parse(input);

let auth;
if (privateJwk) {
  const { kid, ...jwk } = privateJwk;
  const key = await crypto.subtle.importKey(
    'jwk',
    jwk,
    { name: 'ECDSA', namedCurve: 'P-256' },
    false,
    ['sign'],
  );
  auth = client.PrivateKeyJwt({ key, kid });
} else {
  auth = client.ClientSecretBasic(secret);
}

const config = await client.discovery(new URL(issuer), clientId, undefined, auth, {
  algorithm: 'oauth2',
  execute: [client.allowInsecureRequests],
});
const tokens = await client.clientCredentialsGrant(config, { scope: 'customers:read' });
const before = await client.tokenIntrospection(config, tokens.access_token);
await client.tokenRevocation(config, tokens.access_token);
const after = await client.tokenIntrospection(config, tokens.access_token);

const metadata = config.serverMetadata();
process.stdout.write(
  JSON.stringify({
    scope: tokens.scope,
    tokenType: tokens.token_type,
    activeBefore: before.active,
    clientIdIntrospected: before.client_id,
    activeAfter: after.active,
    metadata: {
      introspection_endpoint: metadata.introspection_endpoint,
      revocation_endpoint: metadata.revocation_endpoint,
    },
  }) + '\n',
);
