/**
 * A byte relay that carries the API server into the node's network namespace without giving the
 * machine's own namespace any interface, route or rule: a unix socket (a file, so both namespaces see
 * it) joins two halves.
 *
 *   tcp-to-unix HOST PORT SOCKET   listen on HOST:PORT (inside the node namespace), connect to SOCKET
 *   unix-to-tcp SOCKET HOST PORT   listen on SOCKET (in the machine's namespace), connect to HOST:PORT
 *
 * TLS passes through untouched. Run as its own process (`node relay.js ...`), started and killed by the
 * node harness by pid.
 */
import { createConnection, createServer, type Socket } from 'node:net';
import { rmSync } from 'node:fs';

function pipe(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  const end = (): void => {
    a.destroy();
    b.destroy();
  };
  a.on('error', end).on('close', end);
  b.on('error', end).on('close', end);
}

function main(argv: string[]): void {
  const [mode, ...rest] = argv;
  if (mode === 'tcp-to-unix' && rest.length === 3) {
    const [host, port, socketPath] = rest as [string, string, string];
    createServer((c) => pipe(c, createConnection({ path: socketPath }))).listen(Number(port), host, () =>
      process.stdout.write(`relay listening on ${host}:${port}\n`),
    );
  } else if (mode === 'unix-to-tcp' && rest.length === 3) {
    const [socketPath, host, port] = rest as [string, string, string];
    rmSync(socketPath, { force: true });
    createServer((c) => pipe(c, createConnection({ host, port: Number(port) }))).listen(socketPath, () =>
      process.stdout.write(`relay listening on ${socketPath}\n`),
    );
  } else {
    process.stderr.write('usage: relay tcp-to-unix HOST PORT SOCKET | unix-to-tcp SOCKET HOST PORT\n');
    process.exit(2);
  }
}

main(process.argv.slice(2));
