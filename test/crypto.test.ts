import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/index.js';
import {
  canonicalJson,
  EnvelopeError,
  generateKeys,
  Keyring,
  MessageVerifier,
  NonceCache,
  checkAnswer,
  readKeys,
  ReplayLedger,
  signAnswer,
  SealedEnvelope,
  signMessage,
  toB64,
  type SignedMessage,
} from '../src/crypto/index.js';
import { runCli } from './helpers/daemonProcess.js';
import { tempDir, writeTemp } from './helpers/paths.js';

const operator = nacl.sign.keyPair();
const peer = nacl.sign.keyPair();
const keyring = new Keyring([
  { name: 'alice', sign: toB64(operator.publicKey), roles: ['operator'] },
  { name: 'node-b', sign: toB64(peer.publicKey), box: toB64(nacl.box.keyPair().publicKey), roles: ['peer'] },
]);
const NOW = 1_800_000_000_000;
const verifier = () => new MessageVerifier({ keyring, purpose: 'command', role: 'operator', target: 'cam-01', now: () => NOW });
const sign = (over: Partial<SignedMessage> = {}, keys = operator) =>
  signMessage({ purpose: 'command', target: 'cam-01', action: 'set-precision', args: { precision: 'int8' }, issuedAt: NOW, ...over }, keys);

describe('signed messages', () => {
  it('accepts a fresh message from an operator key, for this device', () => {
    const v = verifier().verify(sign());
    expect(v).toMatchObject({ ok: true, signer: { name: 'alice' } });
  });

  it('fails when any signed field is changed after signing', () => {
    const flips: [keyof SignedMessage, unknown][] = [
      ['purpose', 'announce'],
      ['target', 'cam-02'],
      ['action', 'restart'],
      ['args', { precision: 'fp32' }],
      ['issuedAt', NOW + 1],
      ['nonce', Buffer.alloc(16, 7).toString('base64')],
    ];
    for (const [field, value] of flips) {
      const m = { ...sign(), [field]: value };
      // purpose and target are checked before the signature (they cost nothing): either way the change is caught
      const reason = field === 'purpose' ? 'malformed' : field === 'target' ? 'wrong-target' : 'bad-signature';
      expect(verifier().verify(m), field).toMatchObject({ ok: false, reason });
    }
    const sig = Buffer.from(sign().sig, 'base64');
    sig[0] ^= 1;
    expect(verifier().verify({ ...sign(), sig: sig.toString('base64') })).toMatchObject({ ok: false, reason: 'bad-signature' });
    expect(verifier().verify({ ...sign(), signer: toB64(peer.publicKey) })).toMatchObject({ ok: false, reason: 'wrong-role' });
  });

  it('checks key, role, target and clock window before the signature, then whether it is new', () => {
    const stranger = nacl.sign.keyPair();
    expect(verifier().verify({ hello: 1 })).toMatchObject({ reason: 'malformed' });
    expect(verifier().verify(sign({}, stranger))).toMatchObject({ reason: 'unknown-key' });
    expect(verifier().verify(sign({}, peer))).toMatchObject({ reason: 'wrong-role' });
    expect(verifier().verify(sign({ target: 'cam-02' }))).toMatchObject({ reason: 'wrong-target', authentic: false });
    // a stranger's cheap refusals need no signature check: a bad signature on the wrong target is wrong-target
    expect(verifier().verify({ ...sign({ target: 'cam-02' }), sig: sign().sig })).toMatchObject({ reason: 'wrong-target' });
    expect(verifier().verify({ ...sign({ issuedAt: NOW - 121_000 }), sig: sign().sig })).toMatchObject({ reason: 'expired' });
    expect(verifier().verify(sign({ issuedAt: NOW - 121_000 }))).toMatchObject({ reason: 'expired' });
    expect(verifier().verify(sign({ issuedAt: NOW + 121_000 }))).toMatchObject({ reason: 'expired' });
    const v = verifier();
    const m = sign();
    expect(v.verify(m).ok).toBe(true);
    expect(v.verify(m)).toMatchObject({ reason: 'replayed' });
  });

  it('refuses a message id (nonce) over 64 characters before it is remembered', () => {
    const v = verifier();
    for (const nonce of ['x'.repeat(65), 'x'.repeat(7 * 1024 * 1024), 'short', 'has spaces in it!!'])
      expect(v.verify(sign({ nonce })), nonce.slice(0, 20)).toMatchObject({ ok: false, reason: 'malformed' });
    expect(v.verify(sign({ nonce: 'y'.repeat(64) })).ok).toBe(true);
  });

  it('covers a canonical encoding: the same fields in another order verify', () => {
    const m = sign({ args: { b: 1, a: [2, { z: 1, y: 2 }] } });
    const { sig, args: _signedOrder, ...rest } = m;
    const reordered = JSON.parse(JSON.stringify({ sig, args: { a: [2, { y: 2, z: 1 }], b: 1 }, ...rest }));
    expect(JSON.stringify(reordered)).not.toBe(JSON.stringify(m));
    expect(verifier().verify(reordered).ok).toBe(true);
    expect(canonicalJson({ b: 1, a: { d: 2, c: [1, 'x'] } })).toBe('{"a":{"c":[1,"x"],"d":2},"b":1}');
  });

  it('keeps a bounded nonce cache that forgets what the window would refuse anyway', () => {
    const cache = new NonceCache(3, 1000);
    for (const n of ['a', 'b', 'c', 'd']) expect(cache.admit(n, 0)).toBe(true);
    expect(cache.size).toBe(3);
    expect(cache.evicted).toBe(1);
    expect(cache.admit('d', 10)).toBe(false);
    expect(cache.admit('b', 2000)).toBe(true); // expired entries are pruned
  });
});

describe('the replay ledger', () => {
  const ledgerVerifier = (file: string) => {
    const ledger = new ReplayLedger(file, 120_000);
    expect(ledger.load(NOW)).toBeNull();
    return new MessageVerifier({ keyring, purpose: 'command', role: 'operator', target: 'cam-01', now: () => NOW, replay: ledger });
  };

  it('refuses a replay and an older message after a restart (a new ledger on the same file)', () => {
    const file = join(tempDir(), 'replay.json');
    const older = sign({ issuedAt: NOW - 5000 });
    const newer = sign({ issuedAt: NOW - 1000 });
    const sameMs = sign({ issuedAt: NOW - 1000 });
    expect(ledgerVerifier(file).verify(newer).ok).toBe(true);
    const after = ledgerVerifier(file);
    expect(after.verify(newer)).toMatchObject({ ok: false, reason: 'replayed', authentic: true });
    expect(after.verify(older)).toMatchObject({ ok: false, reason: 'out-of-order', authentic: true });
    expect(after.verify(sameMs).ok).toBe(true); // two commands in one millisecond: both new
    expect(ledgerVerifier(file).verify(sameMs)).toMatchObject({ reason: 'replayed' });
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('a message it cannot record is not admitted (the error says where), and stays new for a retry', () => {
    const dir = join(tempDir(), 'gone');
    const v = ledgerVerifier(join(dir, 'replay.json'));
    const m = sign();
    expect(() => v.verify(m)).toThrow(/cannot record replay state in .*gone\/replay.json/);
    mkdirSync(dir);
    expect(v.verify(m).ok).toBe(true);
  });

  it('an unreadable ledger refuses everything issued before now + window, and says so', () => {
    const file = join(tempDir(), 'replay.json');
    writeFileSync(file, '{ torn');
    const ledger = new ReplayLedger(file, 120_000);
    expect(ledger.load(NOW)).toMatch(/replay.json is unreadable.*refusing commands issued before/);
    const v = new MessageVerifier({ keyring, purpose: 'command', role: 'operator', target: 'cam-01', now: () => NOW, replay: ledger });
    expect(v.verify(sign())).toMatchObject({ reason: 'out-of-order' });
  });
});

describe('signed command answers', () => {
  const device = nacl.sign.keyPair();
  const want = { device: 'cam-01', action: 'status', request: 'n'.repeat(24), deviceKey: device.publicKey };
  const answer = (keys = device, over: Record<string, unknown> = {}) =>
    signAnswer({ device: 'cam-01', action: 'status', request: 'n'.repeat(24), status: 'ok', data: { a: [1, undefined, 2.5] }, answeredAt: NOW, ...over }, keys);

  it("accepts the device's answer to this command, as parsed from the wire", () => {
    expect(checkAnswer(JSON.parse(JSON.stringify(answer())), want)).toMatchObject({ ok: true, answer: { status: 'ok', data: { a: [1, null, 2.5] } } });
  });

  it('refuses a forger, an answer to another command or device, and any change', () => {
    expect(checkAnswer({ status: 'ok', data: {} }, want)).toMatchObject({ ok: false, why: 'unsigned' });
    expect(checkAnswer(answer(nacl.sign.keyPair()), want)).toMatchObject({ ok: false, why: "not signed by cam-01's key" });
    expect(checkAnswer(answer(device, { request: 'm'.repeat(24) }), want)).toMatchObject({ ok: false, why: 'an answer to another command' });
    expect(checkAnswer(answer(device, { device: 'cam-09' }), want)).toMatchObject({ ok: false, why: 'an answer to another command' });
    expect(checkAnswer({ ...answer(), status: 'refused' }, want)).toMatchObject({ ok: false, why: 'bad signature' });
    expect(checkAnswer({ ...answer(), data: { a: [1, null, 3] } }, want)).toMatchObject({ ok: false, why: 'bad signature' });
  });
});

describe('key files', () => {
  it('writes secrets 0600 in a 0700 folder, refuses to overwrite, and never prints a secret', () => {
    const dir = join(tempDir(), 'keys');
    const pub = generateKeys(dir);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'secret.json')).mode & 0o777).toBe(0o600);
    expect(() => generateKeys(dir)).toThrow(/already holds keys.*--force/);
    expect(generateKeys(dir, true).sign).not.toBe(pub.sign);
    const shown = runCli(['keys', 'show', '--dir', dir, '--json']);
    const secret = JSON.parse(readFileSync(join(dir, 'secret.json'), 'utf8'));
    expect(shown.stdout).not.toContain(secret.sign);
    expect(shown.stdout).not.toContain(secret.box);
    expect(JSON.parse(shown.stdout)).toMatchObject({
      sign: expect.any(String),
      box: expect.any(String),
      fingerprint: expect.stringMatching(/^[0-9a-f]{4}(-[0-9a-f]{4}){3}$/),
    });
    expect(runCli(['keys', 'generate', '--dir', dir]).code).toBe(64);
  });

  it('refuses a secret file others can read', () => {
    const dir = join(tempDir(), 'keys');
    generateKeys(dir);
    chmodSync(join(dir, 'secret.json'), 0o644);
    expect(() => readKeys(dir)).toThrow(/readable by others \(mode 644\); chmod 600/);
  });
});

describe('sealed envelopes', () => {
  const device = nacl.box.keyPair();
  const collector = nacl.box.keyPair();
  const sealed = () => new SealedEnvelope(device).seal({ device: 'cam-01', seq: 7 }, Buffer.from('hello'), collector.publicKey);

  it('opens for the recipient, naming the sender', () => {
    const opened = new SealedEnvelope(collector).open<{ device: string; seq: number }>(sealed());
    expect(opened).toMatchObject({ sender: toB64(device.publicKey), header: { device: 'cam-01', seq: 7, v: 1 } });
    expect(opened.payload.toString()).toBe('hello');
  });

  it('refuses tampered, truncated, wrong-key and garbage bytes with a reason', () => {
    const reason = (bytes: Buffer, keys = collector) => {
      try {
        new SealedEnvelope(keys).open(bytes);
        return 'opened';
      } catch (err) {
        return (err as EnvelopeError).reason;
      }
    };
    const tampered = sealed();
    tampered[tampered.length - 1] ^= 1;
    expect(reason(tampered)).toBe('cannot-open');
    expect(reason(sealed().subarray(0, 40))).toBe('truncated');
    expect(reason(sealed().subarray(0, sealed().length - 3))).toBe('cannot-open');
    expect(reason(sealed(), nacl.box.keyPair())).toBe('cannot-open');
    expect(reason(Buffer.from('garbage garbage garbage garbage garbage garbage garbage garbage garbage'))).toBe('garbage');
    const v2 = sealed();
    v2[4] = 2;
    expect(reason(v2)).toBe('version');
  });
});

describe('keyring in the config', () => {
  const key = toB64(operator.publicKey);
  it('names the line of a wrong key length, a duplicate name and an unknown role', () => {
    const file = writeTemp(
      'outpost.yaml',
      `keyring:\n  - { name: alice, sign: ${key}, roles: [operator] }\n  - { name: alice, sign: ${key}, roles: [operator] }\n  - { name: bob, sign: AAAA, roles: [operator] }\n  - { name: carol, sign: ${key}, roles: [admin] }\n`,
    );
    let err: ConfigError | undefined;
    try {
      loadConfig(file, {});
    } catch (e) {
      err = e as ConfigError;
    }
    const lines = err!.problems.map((p) => `${p.line}:${p.col} ${p.path}: ${p.message}`);
    expect(lines).toEqual([
      expect.stringMatching(/^4:\d+ keyring\[2\]\.sign: must be an Ed25519 public key: base64 of 32 bytes/),
      expect.stringMatching(/^5:\d+ keyring\[3\]\.roles\[0\]: "admin" is not one of: operator, peer, collector$/),
    ]);
    writeFileSync(
      file,
      `keyring:\n  - { name: alice, sign: ${key}, roles: [operator] }\n  - { name: alice, sign: ${key}, roles: [operator] }\n  - { name: coll, roles: [collector] }\n`,
    );
    const second = (() => {
      try {
        loadConfig(file, {});
      } catch (e) {
        return (e as ConfigError).problems.map((p) => `${p.line}:${p.col} ${p.path}: ${p.message}`);
      }
    })();
    expect(second).toEqual([
      expect.stringMatching(/^3:\d+ keyring\[1\]\.name: key name "alice" is used twice/),
      expect.stringMatching(/^4:\d+ keyring\[2\]\.sign: a collector key needs an Ed25519 "sign" public key/),
      expect.stringMatching(/^4:\d+ keyring\[2\]\.box: a collector key needs an X25519 "box" public key/),
    ]);
  });
});
