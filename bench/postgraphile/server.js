// PostGraphile v4 serving the benchmark database: the peer `python -m bench.run` measures
// the hub against (see bench/README.md, "PostGraphile").
//
// Environment (set by bench/peers.py):
//   BENCH_PG_URL     postgres://... of the seeded hub_bench_* database (not on the command
//                    line, where `ps` would show a password)
//   BENCH_PORT       the loopback port to listen on
//   BENCH_POOL_SIZE  connections in the pg pool (the hub's default pool size)
//   BENCH_WORKERS    Node processes sharing the port (node:cluster), like --workers
//
// Options are those of a production deployment: no query log, no GraphiQL, no schema
// watching, errors without stacks, relations and orderBy only where an index makes them
// cheap. No JWT and no pgSettings: queries run without a transaction or `set_config`, and
// there is no row-level security, which is the point of the comparison.

"use strict";

const cluster = require("node:cluster");
const http = require("node:http");
const { Pool } = require("pg");
const { postgraphile } = require("postgraphile");

const HOST = "127.0.0.1";
const port = Number(process.env.BENCH_PORT);
const workers = Number(process.env.BENCH_WORKERS || "1");
const poolSize = Number(process.env.BENCH_POOL_SIZE || "20");
const connectionString = process.env.BENCH_PG_URL;

if (!connectionString || !Number.isInteger(port) || port <= 0) {
  console.error("BENCH_PG_URL and BENCH_PORT must be set");
  process.exit(2);
}

if (cluster.isPrimary && workers > 1) {
  for (let i = 0; i < workers; i += 1) cluster.fork();
  cluster.on("exit", (worker, code, signal) => {
    // A worker that dies mid-run would skew the numbers: stop, the benchmark sees it.
    console.error(`worker ${worker.process.pid} exited (${signal || code})`);
    process.exit(1);
  });
  process.on("SIGTERM", () => {
    for (const worker of Object.values(cluster.workers)) worker.kill("SIGTERM");
    process.exit(0);
  });
} else {
  serve();
}

function serve() {
  const pool = new Pool({ connectionString, max: poolSize });
  const middleware = postgraphile(pool, "public", {
    disableQueryLog: true,
    graphiql: false,
    watchPg: false,
    retryOnInitFail: false,
    dynamicJson: true,
    setofFunctionsContainNulls: false,
    ignoreRBAC: false,
    ignoreIndexes: false,
    legacyRelations: "omit",
    extendedErrors: ["errcode"],
    showErrorStack: false,
    enableQueryBatching: false,
  });
  // Ready once the schema is built from the database's catalog, as the hub's /readyz
  // answers once it can serve.
  let ready = false;
  middleware.getGraphQLSchema().then(
    () => {
      ready = true;
    },
    (error) => {
      console.error(`PostGraphile could not build its schema: ${error.message}`);
      process.exit(1);
    },
  );
  const server = http.createServer((req, res) => {
    if (req.url === "/readyz") {
      res.writeHead(ready ? 200 : 503, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ status: ready ? "ready" : "starting" }));
      return;
    }
    middleware(req, res);
  });
  server.listen(port, HOST);
  process.on("SIGTERM", () => {
    server.close();
    pool.end().finally(() => process.exit(0));
  });
}
