// Compose Apollo Federation subgraphs into a supergraph (@apollo/composition).
// Reads {"subgraphs": [{"name", "url", "sdl"}]} on stdin; prints
// {"errors": [{"code", "message"}], "hints": [...], "supergraphSdl": string | null}.
import { composeServices } from '@apollo/composition';
import { parse } from 'graphql';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const { subgraphs } = JSON.parse(input);

const result = composeServices(
  subgraphs.map(({ name, url, sdl }) => ({ name, url, typeDefs: parse(sdl) })),
);
const output = {
  errors: (result.errors ?? []).map((e) => ({
    code: e.extensions?.code ?? null,
    message: e.message,
  })),
  hints: (result.hints ?? []).map((h) => ({ code: h.definition?.code ?? null, message: h.message })),
  supergraphSdl: result.supergraphSdl ?? null,
};
process.stdout.write(JSON.stringify(output) + '\n');
