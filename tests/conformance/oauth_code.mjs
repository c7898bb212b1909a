// oauth4webapi against the hub: discovery (RFC 8414), the authorization code grant with
// PKCE S256 through the staff sign-in page, then a refresh (rotation). A public client
// (token_endpoint_auth_method "none"). Reads {"issuer", "clientId", "redirectUri",
// "email", "password"} on stdin; prints {"scope", "tokenType", "refreshed", "me", ...}.
import * as oauth from 'oauth4webapi';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const { issuer, clientId, redirectUri, email, password } = JSON.parse(input);
const insecure = { [oauth.allowInsecureRequests]: true };

const issuerUrl = new URL(issuer);
const as = await oauth.processDiscoveryResponse(
  issuerUrl,
  await oauth.discoveryRequest(issuerUrl, { algorithm: 'oauth2', ...insecure }),
);
const client = { client_id: clientId };
const clientAuth = oauth.None();

const verifier = oauth.generateRandomCodeVerifier();
const challenge = await oauth.calculatePKCECodeChallenge(verifier);
const state = oauth.generateRandomState();
const authorize = new URL(as.authorization_endpoint);
authorize.search = new URLSearchParams({
  response_type: 'code',
  client_id: clientId,
  redirect_uri: redirectUri,
  scope: 'customers:read',
  state,
  code_challenge: challenge,
  code_challenge_method: 'S256',
}).toString();

// The browser's part: show the sign-in page, post the form with its cookie.
const page = await fetch(authorize, { redirect: 'manual' });
if (page.status !== 200) throw new Error(`sign-in page: ${page.status} ${await page.text()}`);
const cookie = page.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
const form = new URLSearchParams();
for (const [, name, value] of (await page.text()).matchAll(
  /<input type="hidden" name="([^"]+)" value="([^"]*)">/g,
)) {
  form.set(name, value.replaceAll('&quot;', '"').replaceAll('&#x27;', "'").replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&'));
}
form.set('email', email);
form.set('password', password);
const signedIn = await fetch(as.authorization_endpoint, {
  method: 'POST',
  body: form,
  headers: { cookie },
  redirect: 'manual',
});
const location = signedIn.headers.get('location');
if (!location) throw new Error(`sign-in: ${signedIn.status} ${await signedIn.text()}`);

const params = oauth.validateAuthResponse(as, client, new URL(location), state);
const codeResponse = await oauth.authorizationCodeGrantRequest(
  as, client, clientAuth, params, redirectUri, verifier, insecure,
);
const tokens = await oauth.processAuthorizationCodeResponse(as, client, codeResponse);

const refreshResponse = await oauth.refreshTokenGrantRequest(
  as, client, clientAuth, tokens.refresh_token, insecure,
);
const refreshed = await oauth.processRefreshTokenResponse(as, client, refreshResponse);

const graphql = await fetch(`${issuer}/graphql`, {
  method: 'POST',
  headers: {
    authorization: `Bearer ${refreshed.access_token}`,
    'content-type': 'application/json',
    accept: 'application/graphql-response+json',
  },
  body: JSON.stringify({ query: '{ me { clientId } }' }),
});

process.stdout.write(
  JSON.stringify({
    scope: tokens.scope,
    tokenType: tokens.token_type,
    hasRefreshToken: typeof tokens.refresh_token === 'string',
    rotated: refreshed.refresh_token !== tokens.refresh_token,
    refreshedScope: refreshed.scope,
    graphqlStatus: graphql.status,
    me: (await graphql.json()).data?.me ?? null,
  }) + '\n',
);
