import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { SealedEnvelope } from '../src/crypto/index.js';

/**
 * The envelope's test vector (README, "The envelope"): fixed keys and nonce give these exact bytes, and a reader
 * that knows only the documented layout and NaCl's `box` opens them. A collector in another language checks
 * itself against the same values.
 */
const DEVICE_SECRET = new Uint8Array(32).fill(1);
const COLLECTOR_SECRET = new Uint8Array(32).fill(2);
const NONCE = new Uint8Array(24).fill(3);
const HEADER = { device: 'cam-01', seq: 1, contentType: 'application/vnd.outpost.result+json', capturedAt: 1700000000000 };
const PAYLOAD = '{"text":"hello"}';
const VECTOR =
  '4f50534501a4e09292b651c278b9772c569f5fa9bb13d906b46ab68c9df9dc2b4409f8a20903030303030303030303030303030303030303030303030326fa43723e11de17e9ecf431969dc812e32b7f7f50345ecb526945125890e298ab378d85593626c6253ec2644854561171f5aac06786d5fb2245203d26fd4f9560f6bd80563427fc487df99d7c66b25840967380e2bce30120843c0ecf3d83e5f104bda9e25d76977b095c7d6f32370bcdf3a1c2f71cfa0436aa2c31c53a613675a6f1f0d36f23264395d218f333d779172c355c';

describe('the sealed envelope, version 1', () => {
  const device = nacl.box.keyPair.fromSecretKey(DEVICE_SECRET);
  const collector = nacl.box.keyPair.fromSecretKey(COLLECTOR_SECRET);

  it('seals the test vector byte for byte', () => {
    expect(new SealedEnvelope(device).seal(HEADER, Buffer.from(PAYLOAD), collector.publicKey, NONCE).toString('hex')).toBe(VECTOR);
  });

  it('opens with nothing but the documented layout and NaCl box', () => {
    const env = Buffer.from(VECTOR, 'hex');
    expect(env.subarray(0, 4).toString('latin1')).toBe('OPSE');
    expect(env[4]).toBe(1);
    expect(Buffer.from(env.subarray(5, 37)).equals(Buffer.from(device.publicKey))).toBe(true);
    const plain = Buffer.from(nacl.box.open(env.subarray(61), env.subarray(37, 61), env.subarray(5, 37), COLLECTOR_SECRET)!);
    const len = plain.readUInt32BE(0);
    expect(JSON.parse(plain.subarray(4, 4 + len).toString('utf8'))).toEqual({ ...HEADER, v: 1 });
    expect(plain.subarray(4 + len).toString('utf8')).toBe(PAYLOAD);
  });
});
