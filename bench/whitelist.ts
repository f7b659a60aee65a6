/**
 * Whitelist lookup microbenchmark: CidrSet with 10,000 entries (IPv4 and IPv6, mixed prefix lengths, some
 * expiring) against a mix of hits and misses (IPv4, IPv6, IPv4-mapped IPv6), compared with a linear
 * ipaddr.js scan over 20,000 entries. Checks that both agree before timing anything, writes
 * bench/results/whitelist.json and exits 1 below the target of 1,000,000 lookups/s. The target is judged
 * per second of this process's CPU time, so other programs on a shared machine cannot fail it; the
 * wall-clock rate is reported next to it. Run: `node dist/bench/whitelist.js` (about 4 s, no network).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ipaddr from 'ipaddr.js';
import { parseCidr, type Cidr } from '../src/common/cidr.js';
import { CidrSet, type CidrSetEntry } from '../src/common/cidr-set.js';

const TARGET_LOOKUPS_PER_SECOND = 1_000_000;
const ENTRIES = 10_000;
const BASELINE_ENTRIES = 20_000;
const QUERIES = 4096;
const TIMED_SECONDS = 1.5;
const MAX_TIMED_LOOKUPS = 10_000_000;

const IPV4_PREFIXES = [16, 18, 20, 22, 24, 24, 24, 24, 26, 28, 29, 30, 32, 32, 32, 32, 32];
const IPV6_PREFIXES = [32, 40, 44, 48, 48, 52, 56, 56, 60, 64, 64, 64, 80, 96, 112, 120, 127, 128, 128];

/** A seeded linear congruential generator: every run measures the same lists and queries. */
let seed = 20_250_101;
const random = (): number => (seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0) / 2 ** 32;
const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
const word16 = (): string => Math.floor(random() * 0x10000).toString(16);
const octet = (): number => Math.floor(random() * 256);

function randomIpv4(): string {
  return `${1 + Math.floor(random() * 223)}.${octet()}.${octet()}.${octet()}`;
}

/** Global unicast space 2000::/4 with a few popular /16s, so many entries share high bits. */
function randomIpv6(): string {
  const head = pick(['2001', '2a01', '2a02', '2600', '2c0f', (0x2000 + Math.floor(random() * 0x1000)).toString(16)]);
  return [head, ...Array.from({ length: 7 }, word16)].join(':');
}

interface BenchEntry extends CidrSetEntry {
  range: [ipaddr.IPv4 | ipaddr.IPv6, number];
  expiresMs: number;
}

function buildEntries(count: number, nowMs: number): BenchEntry[] {
  const entries: BenchEntry[] = [];
  while (entries.length < count) {
    const ipv4 = random() < 0.6;
    const text = ipv4 ? `${randomIpv4()}/${pick(IPV4_PREFIXES)}` : `${randomIpv6()}/${pick(IPV6_PREFIXES)}`;
    const parsed = parseCidr(text);
    if (!parsed.ok) throw new Error(`bench generated a bad CIDR ${text}: ${parsed.error}`);
    const roll = random();
    // 10 % expire in an hour, 5 % expired an hour ago: both must be honoured on the hot path.
    const expiresMs = roll < 0.1 ? nowMs + 3_600_000 : roll < 0.15 ? nowMs - 3_600_000 : Infinity;
    const entry: BenchEntry = { cidr: parsed.value, range: ipaddr.parseCIDR(parsed.value.text), expiresMs };
    if (Number.isFinite(expiresMs)) entry.expires = new Date(expiresMs);
    entries.push(entry);
  }
  return entries;
}

/** An address inside `cidr`: its network with random host bits. */
function addressInside(cidr: Cidr): string {
  const bytes = ipaddr.parse(cidr.text.split('/')[0]!).toByteArray();
  for (let bit = cidr.prefix; bit < bytes.length * 8; bit++) {
    if (random() < 0.5) bytes[bit >> 3]! |= 0x80 >> (bit & 7);
  }
  return ipaddr.fromByteArray(bytes).toString();
}

/** Hits and misses over IPv4, IPv6 and IPv4-mapped IPv6, as a dual-stack socket would report them. */
function buildQueries(entries: BenchEntry[]): string[] {
  const ipv4Entries = entries.filter((entry) => entry.cidr.family === 4);
  const ipv6Entries = entries.filter((entry) => entry.cidr.family === 6);
  return Array.from({ length: QUERIES }, () => flat(randomQuery(ipv4Entries, ipv6Entries)));
}

/** socket.remoteAddress is a flat string made in C++; built-up strings are ropes, slower to read. */
function flat(text: string): string {
  return Buffer.from(text, 'latin1').toString('latin1');
}

function randomQuery(ipv4Entries: BenchEntry[], ipv6Entries: BenchEntry[]): string {
  const roll = random();
  if (roll < 0.25) return addressInside(pick(ipv4Entries).cidr);
  if (roll < 0.4) return randomIpv4();
  if (roll < 0.55) return `::ffff:${random() < 0.5 ? addressInside(pick(ipv4Entries).cidr) : randomIpv4()}`;
  if (roll < 0.8) return addressInside(pick(ipv6Entries).cidr);
  return randomIpv6();
}

function linearMatch(entries: BenchEntry[], query: string, nowMs: number): boolean {
  const address = ipaddr.process(query);
  for (const entry of entries) {
    if (entry.expiresMs > nowMs && address.kind() === entry.range[0].kind() && address.match(entry.range)) return true;
  }
  return false;
}

/** Refuses to time a fast but wrong index: CidrSet must agree with the linear ipaddr.js scan. */
function checkAgreement(set: CidrSet<BenchEntry>, entries: BenchEntry[], queries: string[], nowMs: number): number {
  let hits = 0;
  for (const query of queries.slice(0, 1500)) {
    const expected = linearMatch(entries, query, nowMs);
    const actual = set.match(query, nowMs) !== undefined;
    if (expected !== actual) throw new Error(`CidrSet says ${actual} for ${query}, the linear ipaddr.js scan says ${expected}`);
    if (actual) hits++;
  }
  return hits / 1500;
}

interface Measurement {
  lookups: number;
  /** Lookups per second of this process's CPU time: the cost of a lookup, whatever else the machine runs. */
  perCpuSecond: number;
  /** Lookups per second of elapsed time: lower than perCpuSecond when other processes take the CPU. */
  perWallSecond: number;
}

/** Runs `batch` (which does `batchSize` lookups) repeatedly for about `seconds` or up to `maxLookups`. */
function measure(batch: () => void, batchSize: number, seconds: number, maxLookups: number): Measurement {
  let lookups = 0;
  const cpuStart = process.cpuUsage();
  const started = performance.now();
  while (performance.now() - started < seconds * 1000 && lookups < maxLookups) {
    batch();
    lookups += batchSize;
  }
  const wallSeconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  return { lookups, perCpuSecond: Math.round(lookups / cpuSeconds), perWallSecond: Math.round(lookups / wallSeconds) };
}

function timeCidrSet(set: CidrSet<BenchEntry>, queries: string[], nowMs: number, seconds: number): Measurement {
  let hits = 0;
  const batch = (): void => {
    for (let i = 0; i < queries.length; i++) if (set.match(queries[i]!, nowMs) !== undefined) hits++;
  };
  const measured = measure(batch, queries.length, seconds, MAX_TIMED_LOOKUPS);
  if (hits < 0) console.log(hits); // keeps the lookups observable so they cannot be optimised away
  return measured;
}

function timeLinearScan(entries: BenchEntry[], queries: string[], nowMs: number): Measurement {
  let next = 0;
  return measure(() => linearMatch(entries, queries[next++ % queries.length]!, nowMs), 1, 0.6, queries.length);
}

async function main(): Promise<void> {
  const nowMs = Date.now();
  const entries = buildEntries(ENTRIES, nowMs);
  const set = new CidrSet(entries);
  const queries = buildQueries(entries);
  const hitRatio = checkAgreement(set, entries, queries, nowMs);

  timeCidrSet(set, queries, nowMs, 0.3); // warm-up: let the JIT settle before measuring
  const kinds = {
    ipv4: queries.filter((query) => !query.includes(':')),
    ipv6: queries.filter((query) => query.includes(':') && !query.includes('.')),
    mapped: queries.filter((query) => query.startsWith('::ffff:')),
  };
  const perKind = Object.fromEntries(
    Object.entries(kinds).map(([kind, list]) => [kind, timeCidrSet(set, list, nowMs, 0.25).perCpuSecond]),
  );
  const mixed = timeCidrSet(set, queries, nowMs, TIMED_SECONDS);
  const baselineEntries = [...entries, ...buildEntries(BASELINE_ENTRIES - ENTRIES, nowMs)];
  const linear = timeLinearScan(baselineEntries, queries, nowMs);
  const pass = mixed.perCpuSecond >= TARGET_LOOKUPS_PER_SECOND;

  const microseconds = (perSecond: number): number => Number((1e6 / perSecond).toFixed(3));
  const results = {
    date: new Date().toISOString(),
    node: process.version,
    entries: ENTRIES,
    queries: { distinct: QUERIES, hitRatio: Number(hitRatio.toFixed(3)) },
    cidrSet: {
      lookups: mixed.lookups,
      lookupsPerCpuSecond: mixed.perCpuSecond,
      lookupsPerWallSecond: mixed.perWallSecond,
      microsecondsPerLookup: microseconds(mixed.perCpuSecond),
      lookupsPerCpuSecondByKind: perKind,
    },
    linearIpaddrScan: { entries: BASELINE_ENTRIES, lookups: linear.lookups, microsecondsPerLookup: microseconds(linear.perCpuSecond) },
    target: { lookupsPerCpuSecond: TARGET_LOOKUPS_PER_SECOND, pass },
  };
  const resultsFile = join(dirname(fileURLToPath(import.meta.url)), '../../bench/results/whitelist.json');
  await mkdir(dirname(resultsFile), { recursive: true });
  await writeFile(resultsFile, `${JSON.stringify(results, null, 2)}\n`);

  const rate = (perSecond: number): string => `${(perSecond / 1e6).toFixed(2)} M/s`;
  console.log(`whitelist lookups, ${ENTRIES} entries, ${(hitRatio * 100).toFixed(0)} % hits (rates per CPU second)`);
  console.log(`  CidrSet mixed:   ${rate(mixed.perCpuSecond)}, ${microseconds(mixed.perCpuSecond)} µs each (${mixed.lookups} lookups; wall clock ${rate(mixed.perWallSecond)})`);
  for (const [kind, perSecond] of Object.entries(perKind)) console.log(`    ${kind.padEnd(14)} ${rate(perSecond)}`);
  console.log(`  linear ipaddr.js scan, ${BASELINE_ENTRIES} entries: ${microseconds(linear.perCpuSecond)} µs per lookup`);
  console.log(`  target ${rate(TARGET_LOOKUPS_PER_SECOND)}: ${pass ? 'met' : 'MISSED'}; results in ${resultsFile}`);
  if (!pass) process.exitCode = 1;
}

await main();
