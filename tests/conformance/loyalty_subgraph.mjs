// A department's loyalty service: an Apollo Federation v2 subgraph (@apollo/subgraph) that
// extends the hub's Customer by @key(fields: "id") with loyalty fields of its own.
//
// Listens on 127.0.0.1 (port from argv[2], 0 for any) and prints {"url"} once ready.
// argv[3] = "clash": a version that also defines Customer.name, which the hub owns.
// argv[3] = "support": instead of the loyalty fields, a support desk's fields of the hub's
// Feedback (sentiment, triage { sentiment urgency }) and Case (slaHours).
// Besides POST /graphql it answers GET /stats (every GraphQL request received: its query,
// its variables and its Authorization header) and POST /config ({"delayMs"}: wait
// that long before answering, to play a slow service) and POST /token: an OAuth 2.0
// token endpoint (client_credentials, client_secret_basic for loyalty-hub:s3cret) whose
// tokens the service then requires (Bearer tok-N) once one was issued. The values are a function of the
// customer's id (tierOf, pointsOf), so a test can compute what to expect.
import http from 'node:http';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';

const clash = process.argv[3] === 'clash';
const support = process.argv[3] === 'support';
const supportTypeDefs = `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])

  "How the support desk triaged a piece of feedback."
  type Triage {
    sentiment: String
    urgency: Int
  }

  type Feedback @key(fields: "id") {
    id: ID!
    "negative, neutral or positive."
    sentiment: String
    triage: Triage
  }

  type Case @key(fields: "id") {
    id: ID!
    "Hours the desk commits to for this case."
    slaHours: Int
  }

  type Query {
    supportDesk: String
  }
`;
const typeDefs = parse(support ? supportTypeDefs : `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])

  "A customer's standing in the loyalty programme."
  type LoyaltyAccount {
    tier: String
    points: Int
    memberSince: String
  }

  type Customer @key(fields: "id") {
    id: ID!
    "The loyalty programme tier: bronze, silver or gold."
    loyaltyTier: String
    loyaltyPoints: Int
    loyalty: LoyaltyAccount
    ${clash ? 'name: String' : ''}
  }

  type Query {
    loyaltyProgramme: String
  }
`);

export function score(id) {
  let sum = 0;
  for (const ch of id) sum = (sum * 31 + ch.charCodeAt(0)) % 1000003;
  return sum;
}
const TIERS = ['bronze', 'silver', 'gold'];
const tierOf = (id) => TIERS[score(id) % 3];
const pointsOf = (id) => score(id) % 10000;

const SENTIMENTS = ['negative', 'neutral', 'positive'];
const sentimentOf = (id) => SENTIMENTS[score(id) % 3];
const urgencyOf = (id) => score(id) % 5;
const slaHoursOf = (id) => (score(id) % 72) + 1;

const supportResolvers = {
  Query: { supportDesk: () => 'Acme Desk' },
  Feedback: {
    __resolveReference: (ref) => ({ id: ref.id }),
    sentiment: (f) => sentimentOf(f.id),
    triage: (f) => ({ sentiment: sentimentOf(f.id), urgency: urgencyOf(f.id) }),
  },
  Case: {
    __resolveReference: (ref) => ({ id: ref.id }),
    slaHours: (c) => slaHoursOf(c.id),
  },
};

const loyaltyResolvers = {
  Query: { loyaltyProgramme: () => 'Acme Rewards' },
  Customer: {
    __resolveReference: (ref) => ({ id: ref.id }),
    loyaltyTier: (c) => tierOf(c.id),
    loyaltyPoints: (c) => pointsOf(c.id),
    loyalty: (c) => ({ tier: tierOf(c.id), points: pointsOf(c.id), memberSince: '2020' }),
    ...(clash ? { name: () => 'from loyalty' } : {}),
  },
};
const resolvers = support ? supportResolvers : loyaltyResolvers;

const server = new ApolloServer({
  schema: buildSubgraphSchema({ typeDefs, resolvers }),
  plugins: [ApolloServerPluginInlineTraceDisabled()], // stdout carries only the JSON line
});
await server.start();

const received = [];
const tokenRequests = [];
const issued = new Set();
let delayMs = 0;
const CLIENT = 'Basic ' + Buffer.from('loyalty-hub:s3cret').toString('base64');

async function body(req) {
  let text = '';
  for await (const chunk of req) text += chunk;
  return text ? JSON.parse(text) : {};
}

function reply(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

const listener = http.createServer(async (req, res) => {
  try {
    if (req.method === 'GET' && req.url === '/stats') {
      return reply(res, 200, { received, tokenRequests });
    }
    if (req.method === 'POST' && req.url === '/token') {
      let text = '';
      for await (const chunk of req) text += chunk;
      const form = new URLSearchParams(text);
      tokenRequests.push({ grantType: form.get('grant_type'), scope: form.get('scope') });
      if (req.headers.authorization !== CLIENT) return reply(res, 401, { error: 'invalid_client' });
      if (form.get('grant_type') !== 'client_credentials') {
        return reply(res, 400, { error: 'unsupported_grant_type' });
      }
      const token = `tok-${issued.size + 1}`;
      issued.add(token);
      return reply(res, 200, { access_token: token, token_type: 'Bearer', expires_in: 3600 });
    }
    if (req.method === 'POST' && req.url === '/config') {
      delayMs = (await body(req)).delayMs ?? 0;
      return reply(res, 200, { delayMs });
    }
    if (req.method === 'POST' && req.url === '/graphql') {
      const { query, variables, operationName } = await body(req);
      received.push({
        query,
        variables: variables ?? null,
        authorization: req.headers.authorization ?? null,
      });
      if (issued.size && !issued.has((req.headers.authorization ?? '').replace('Bearer ', ''))) {
        return reply(res, 401, { errors: [{ message: 'a token from /token is required' }] });
      }
      if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
      const response = await server.executeOperation({ query, variables, operationName });
      const result = response.body.kind === 'single' ? response.body.singleResult : null;
      return reply(res, 200, result);
    }
    reply(res, 404, { error: 'not found' });
  } catch (error) {
    reply(res, 500, { error: String(error) });
  }
});
listener.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  const { port } = listener.address();
  process.stdout.write(JSON.stringify({ url: `http://127.0.0.1:${port}/graphql` }) + '\n');
});
