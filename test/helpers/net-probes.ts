/**
 * Reachability probes for namespace tests, in plain `node` (no ping, dig or nc on these machines):
 * a TCP echo round trip and a minimal DNS (A records) server and client. Re-exported by ./netns.ts.
 */
import { runIn, spawnIn, type SpawnedProcess } from './netns.js';

// No `ping` binary on these machines (iputils is not a prerequisite): reachability is proven with a TCP
// round trip instead: a tiny echo server in one namespace, a client in another, both plain `node`.
const ECHO_SERVER = `const s=require('net').createServer(c=>c.pipe(c));s.listen(+process.argv[2],process.argv[1],()=>console.log('listening'));`;
const ECHO_CLIENT = `const c=require('net').connect({host:process.argv[1],port:+process.argv[2]});const t=setTimeout(()=>{console.log('timeout');process.exit(3)},+process.argv[3]);c.on('connect',()=>c.write('pg-probe'));c.on('data',d=>{if(String(d)==='pg-probe'){clearTimeout(t);console.log('ok');process.exit(0)}});c.on('error',e=>{console.log(e.code);process.exit(2)});`;

/** Starts a TCP echo server inside `ns` on host:port; resolves once it listens. */
export async function startEchoServer(ns: string, host: string, port: number): Promise<SpawnedProcess> {
  const p = spawnIn(ns, [process.execPath, '-e', ECHO_SERVER, host, String(port)]);
  await p.waitFor(/listening/, 10_000);
  return p;
}

/** One TCP round trip from inside `ns` to host:port; true when the echo came back within `timeoutMs`. */
export async function tcpProbe(ns: string, host: string, port: number, timeoutMs = 2000): Promise<boolean> {
  const r = await runIn(ns, [process.execPath, '-e', ECHO_CLIENT, host, String(port), String(timeoutMs)], {
    check: false,
  });
  return r.code === 0 && r.stdout.includes('ok');
}

// A minimal DNS (A records only) server and client, to prove cluster names resolve through the tunnel
// (openvpn 2.6 on Linux does not rewrite resolv.conf itself, so the test asks the pushed server directly).
const DNS_SERVER = `const d=require('dgram').createSocket(process.argv[1].includes(':')?'udp6':'udp4');const recs=JSON.parse(process.argv[2]);
d.on('message',(m,r)=>{let o=12,l=[];while(m[o]){l.push(m.subarray(o+1,o+1+m[o]).toString());o+=m[o]+1}o+=5;
const q=m.subarray(12,o),ip=recs[l.join('.').toLowerCase()],h=Buffer.alloc(12);m.copy(h,0,0,2);
h.writeUInt16BE(ip?0x8180:0x8183,2);h.writeUInt16BE(1,4);h.writeUInt16BE(ip?1:0,6);
const a=ip?Buffer.concat([Buffer.from([0xc0,12,0,1,0,1,0,0,0,30,0,4]),Buffer.from(ip.split('.').map(Number))]):Buffer.alloc(0);
d.send(Buffer.concat([h,q,a]),r.port,r.address)});d.bind(53,process.argv[1],()=>console.log('listening'));`;
const DNS_CLIENT = `const d=require('dgram').createSocket(process.argv[1].includes(':')?'udp6':'udp4');const n=process.argv[2];
const q=Buffer.concat([Buffer.from([0x12,0x34,1,0,0,1,0,0,0,0,0,0]),...n.split('.').map(x=>Buffer.concat([Buffer.from([x.length]),Buffer.from(x)])),Buffer.from([0,0,1,0,1])]);
const t=setTimeout(()=>{console.log('timeout');process.exit(3)},+process.argv[3]);
d.on('message',m=>{clearTimeout(t);const rc=m[3]&15;if(rc){console.log('rcode '+rc);process.exit(4)}console.log([...m.subarray(m.length-4)].join('.'));process.exit(0)});
d.send(q,53,process.argv[1]);`;

/**
 * Starts a DNS server (UDP 53 on `host`, IPv4 or IPv6; A records only; name -> IPv4) inside `ns`;
 * unknown names get NXDOMAIN.
 */
export async function startDnsServer(
  ns: string,
  host: string,
  records: Record<string, string>,
): Promise<SpawnedProcess> {
  const p = spawnIn(ns, [process.execPath, '-e', DNS_SERVER, host, JSON.stringify(records)]);
  await p.waitFor(/listening/, 10_000);
  return p;
}

/** Asks `server` for the A record of `name` from inside `ns`; the address, or undefined (timeout/NXDOMAIN). */
export async function dnsQuery(
  ns: string,
  server: string,
  name: string,
  timeoutMs = 2000,
): Promise<string | undefined> {
  const r = await runIn(ns, [process.execPath, '-e', DNS_CLIENT, server, name, String(timeoutMs)], {
    check: false,
  });
  return r.code === 0 ? r.stdout.trim() : undefined;
}
