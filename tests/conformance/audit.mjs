// The GraphQL-over-HTTP spec audit (graphql-http) against a running hub.
// Usage: HUB_TOKEN=<bearer token> node audit.mjs <graphql url>
// Prints a JSON array of {id, name, status, reason?, httpStatus?, contentType?, body?}.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
const token = process.env.HUB_TOKEN;
if (!url || !token) {
  console.error('usage: HUB_TOKEN=<token> node audit.mjs <graphql url>');
  process.exit(2);
}

function fetchWithToken(input, init = {}) {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
}

async function describe(response) {
  if (!response) return {};
  const details = {
    httpStatus: response.status,
    contentType: response.headers.get('content-type'),
  };
  try {
    details.body = (await response.clone().text()).slice(0, 2000);
  } catch {
    // The audit already read the body; status and type are still useful.
  }
  return details;
}

const results = await auditServer({ url, fetchFn: fetchWithToken });
const rows = [];
for (const result of results) {
  const row = { id: result.id, name: result.name, status: result.status };
  if (result.status !== 'ok') {
    Object.assign(row, { reason: result.reason }, await describe(result.response));
  }
  rows.push(row);
}
process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
