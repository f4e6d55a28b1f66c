import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { ItemOpener, ItemSealer, SealedEnvelope } from '../src/crypto/index.js';
import { ROOT } from './helpers/paths.js';

/**
 * The envelopes' test vectors (docs/protocols.md): fixed keys and nonce give these exact bytes, and a reader
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

/** Version 2 (upload items): an ephemeral key per item, the device's Ed25519 signature inside. */
const SIGN_SEED = new Uint8Array(32).fill(1);
const EPHEMERAL_SECRET = new Uint8Array(32).fill(4);
const HEADER_V2 = {
  device: 'cam-01',
  epoch: '0123456789abcdef0123456789abcdef',
  seq: 1,
  contentType: 'application/vnd.outpost.result+json',
  capturedAt: 1700000000000,
};
const VECTOR_V2 =
  '4f505345028a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5cac01b2209e86354fb853237b5de0f4fab13c7fcbf433a61c019369617fecf10b03030303030303030303030303030303030303030303030343b7d3da67f59dec4ccee58009e709a4287802b03ab06528eeac4b36da0ce0bc5c6d69d67a787fbdd624599c70225360af26b6721933e23109f6197db41e8bc556171b8550124874283a3e8fc433e0aebba01eabd9416233a30d171da7c590eb96448f85cd302a5207906fc4b4fe1ffd884a030c73d5cb0d74de88b3dc103ad8be3e7013e1259fa7827ca343cb47e4fd87937f5e3b39bc8f43b3eae350fd00be9fe3cedf1cc37bce50a74f1bf2c51af4e74e2f252f220d2b767bfb4eadc6a4f4bca12030b5c6633f3db450e359a7d0514b1a5b01005db61f5f703449e5c8287bbb7bef76c0d4bdf490916e5aa2cb315efa5a9e6f3bb8af6632f5d9b72db7c9';

describe('the sealed envelope, version 2 (upload items)', () => {
  const device = nacl.sign.keyPair.fromSeed(SIGN_SEED);
  const collector = nacl.box.keyPair.fromSecretKey(COLLECTOR_SECRET);
  const fixed = { ephemeralSecret: EPHEMERAL_SECRET, nonce: NONCE };

  it('seals the test vector byte for byte, and opens it', () => {
    const env = new ItemSealer(device, collector.publicKey).seal(HEADER_V2, Buffer.from(PAYLOAD), fixed);
    expect(env.toString('hex')).toBe(VECTOR_V2);
    expect(new ItemOpener(collector).open(env)).toMatchObject({ header: { ...HEADER_V2, v: 2 } });
  });

  it('opens with nothing but the documented layout, NaCl box.before + secretbox, and Ed25519', () => {
    const env = Buffer.from(VECTOR_V2, 'hex');
    expect(env.subarray(0, 4).toString('latin1')).toBe('OPSE');
    expect(env[4]).toBe(2);
    expect(Buffer.from(env.subarray(5, 37)).equals(Buffer.from(device.publicKey))).toBe(true);
    const ephemeral = env.subarray(37, 69);
    expect(Buffer.from(ephemeral).equals(Buffer.from(nacl.scalarMult.base(EPHEMERAL_SECRET)))).toBe(true);
    const nonce = env.subarray(69, 93);
    const plain = Buffer.from(nacl.secretbox.open(env.subarray(93), nonce, nacl.box.before(ephemeral, COLLECTOR_SECRET))!);
    const signed = Buffer.concat([env.subarray(0, 5), collector.publicKey, ephemeral, nonce, plain.subarray(64)]);
    expect(nacl.sign.detached.verify(signed, plain.subarray(0, 64), device.publicKey)).toBe(true);
    const len = plain.readUInt32BE(64);
    expect(JSON.parse(plain.subarray(68, 68 + len).toString('utf8'))).toEqual({ ...HEADER_V2, v: 2 });
    expect(plain.subarray(68 + len).toString('utf8')).toBe(PAYLOAD);
  });

  it("does not open with the device's own keys: only the collector's", () => {
    const env = new ItemSealer(device, collector.publicKey).seal(HEADER_V2, Buffer.from(PAYLOAD));
    const deviceBox = nacl.box.keyPair.fromSecretKey(DEVICE_SECRET);
    expect(() => new ItemOpener(deviceBox).open(env)).toThrow(/does not open/);
  });
});

describe('docs/protocols.md', () => {
  it('shows both test vectors as the tests seal them', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'protocols.md'), 'utf8').replace(/\s+/g, ' ');
    for (const v of [VECTOR, VECTOR_V2]) expect(doc).toContain(`is ${v.length / 2} bytes starting \`${v.slice(0, 24)}…\` and ending \`…${v.slice(-8)}\``);
  });
});
