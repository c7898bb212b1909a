// An Apollo Federation gateway (@apollo/gateway) over subgraphs, running one operation.
// Reads {"subgraphs": [{"name", "url", "headers"?}], "query", "variables"?} on stdin;
// composes the subgraphs' `_service { sdl }` (IntrospectAndCompose), sends each subgraph
// its headers (the hub needs a bearer token) and prints {"data", "errors"} of the query.
import { ApolloServer } from '@apollo/server';
import { ApolloGateway, IntrospectAndCompose, RemoteGraphQLDataSource } from '@apollo/gateway';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const { subgraphs, query, variables } = JSON.parse(input);
const headersOf = Object.fromEntries(subgraphs.map((s) => [s.name, s.headers ?? {}]));

const gateway = new ApolloGateway({
  supergraphSdl: new IntrospectAndCompose({
    subgraphs: subgraphs.map(({ name, url }) => ({ name, url })),
    introspectionHeaders: (service) => headersOf[service.name],
  }),
  buildService: ({ name, url }) =>
    new RemoteGraphQLDataSource({
      url,
      willSendRequest({ request }) {
        for (const [key, value] of Object.entries(headersOf[name] ?? {})) {
          request.http.headers.set(key, value);
        }
      },
    }),
});
const server = new ApolloServer({ gateway });
await server.start();
const response = await server.executeOperation({ query, variables });
const result = response.body.kind === 'single' ? response.body.singleResult : null;
process.stdout.write(JSON.stringify({ data: result?.data ?? null, errors: result?.errors ?? [] }) + '\n');
await server.stop();
