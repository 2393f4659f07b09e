// Two tiny HTTP backends for the bundled example (api on 127.0.0.1:9001, frontend on 127.0.0.1:9002).
// Each answers with a JSON echo of the request, naming itself, so you can see which route served it.
import { createServer } from "node:http";

export function startExampleBackends(): Promise<() => Promise<void>> {
  const servers = [
    { name: "api", port: 9001 },
    { name: "frontend", port: 9002 },
  ].map(({ name, port }) => {
    const server = createServer((req, res) => {
      const body = JSON.stringify(
        { backend: name, method: req.method, path: req.url, headers: req.headers },
        null,
        2,
      );
      res.writeHead(200, { "content-type": "application/json" });
      res.end(body + "\n");
    });
    return { server, port };
  });
  return Promise.all(
    servers.map(
      ({ server, port }) =>
        new Promise<void>((ok, fail) => {
          server.once("error", fail);
          server.listen(port, "127.0.0.1", ok);
        }),
    ),
  ).then(() => async () => {
    await Promise.all(servers.map(({ server }) => new Promise((done) => server.close(done))));
  });
}
