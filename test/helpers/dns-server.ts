import { createSocket, type Socket } from 'node:dgram';

/**
 * A tiny DNS server on loopback for tests: answers A, NS and TXT questions from a table, authoritatively,
 * over UDP. Enough to play a recursive resolver that knows a zone's NS records, and that zone's own
 * name server; nothing of it is a general DNS implementation.
 */

export type DnsRecords = Record<string, { A?: string[]; NS?: string[]; TXT?: string[] }>;

const TYPES = { A: 1, NS: 2, TXT: 16 } as const;
type TypeName = keyof typeof TYPES;

export interface TestDnsServer {
  port: number;
  /** Questions asked so far, as "TXT _acme-challenge.home.example.test". */
  asked: string[];
  close(): Promise<void>;
}

export async function startDnsServer(host: string, port: number, records: DnsRecords): Promise<TestDnsServer> {
  const socket = createSocket('udp4');
  const asked: string[] = [];
  socket.on('message', (query, rinfo) => {
    const answer = answerQuery(query, records, asked);
    if (answer) socket.send(answer, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => resolve());
  });
  return { port: socket.address().port, asked, close: () => new Promise((resolve) => (socket as Socket).close(() => resolve())) };
}

function answerQuery(query: Buffer, records: DnsRecords, asked: string[]): Buffer | undefined {
  if (query.length < 17) return undefined;
  const { name, end } = readName(query, 12);
  const type = query.readUInt16BE(end);
  const typeName = (Object.keys(TYPES) as TypeName[]).find((key) => TYPES[key] === type);
  asked.push(`${typeName ?? type} ${name}`);
  const entry = records[name.toLowerCase()];
  const values = typeName ? entry?.[typeName] ?? [] : [];
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2); // the id
  header.writeUInt16BE(0x8400 | (entry ? 0 : 3), 2); // response, authoritative; NXDOMAIN for an unknown name
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(values.length, 6);
  const question = query.subarray(12, end + 4);
  return Buffer.concat([header, question, ...values.map((value) => resourceRecord(type, typeName!, value))]);
}

function readName(packet: Buffer, offset: number): { name: string; end: number } {
  const labels: string[] = [];
  let at = offset;
  while (at < packet.length && packet[at] !== 0) {
    labels.push(packet.subarray(at + 1, at + 1 + packet[at]!).toString('ascii'));
    at += 1 + packet[at]!;
  }
  return { name: labels.join('.'), end: at + 1 };
}

function encodeName(name: string): Buffer {
  return Buffer.concat([...name.replace(/\.$/, '').split('.').map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label, 'ascii')])), Buffer.from([0])]);
}

function resourceRecord(type: number, typeName: TypeName, value: string): Buffer {
  const data = typeName === 'A' ? Buffer.from(value.split('.').map(Number))
    : typeName === 'NS' ? encodeName(value)
      : Buffer.concat([Buffer.from([value.length]), Buffer.from(value, 'utf8')]);
  const fixed = Buffer.alloc(12);
  fixed.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
  fixed.writeUInt16BE(type, 2);
  fixed.writeUInt16BE(1, 4); // class IN
  fixed.writeUInt32BE(60, 6);
  fixed.writeUInt16BE(data.length, 10);
  return Buffer.concat([fixed, data]);
}
