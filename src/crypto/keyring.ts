import { KEY_ROLES, type KeyRole } from '../vocabulary.js';
import { OutpostError } from '../errors.js';
import { fromB64 } from './encoding.js';

export { KEY_ROLES, type KeyRole };

/** One trusted key as the config writes it. */
export interface KeyringEntry {
  name: string;
  sign?: string;
  box?: string;
  roles: readonly KeyRole[];
}

export interface TrustedKey {
  name: string;
  sign: Uint8Array | null;
  box: Uint8Array | null;
  roles: ReadonlySet<KeyRole>;
}

/** Whether text is base64 of exactly 32 bytes: an Ed25519 or X25519 public key. */
export const isPublicKey = (text: string) => fromB64(text)?.length === 32;

/** A public key the config checked (base64 of 32 bytes), as bytes. */
export function publicKeyBytes(text: string): Uint8Array {
  const bytes = fromB64(text);
  if (bytes?.length !== 32) throw new OutpostError('OUTPOST_E_CONFIG', `"${text.slice(0, 12)}…" is not a public key: base64 of 32 bytes`);
  return bytes;
}

/**
 * The one list of keys a node trusts (config `keyring:`), looked up by name or by public key. Nothing else is
 * trusted: an operator, a peer or a collector is whoever holds a key listed here with that role.
 */
export class Keyring {
  private readonly byName = new Map<string, TrustedKey>();
  private readonly bySign = new Map<string, TrustedKey>();
  private readonly byBox = new Map<string, TrustedKey>();

  constructor(entries: readonly KeyringEntry[]) {
    for (const e of entries) {
      const key: TrustedKey = { name: e.name, sign: e.sign ? fromB64(e.sign) : null, box: e.box ? fromB64(e.box) : null, roles: new Set(e.roles) };
      this.byName.set(e.name, key);
      if (e.sign) this.bySign.set(e.sign, key);
      if (e.box) this.byBox.set(e.box, key);
    }
  }

  get size(): number {
    return this.byName.size;
  }

  named(name: string): TrustedKey | undefined {
    return this.byName.get(name);
  }

  /** The entry whose Ed25519 key (base64) this is. */
  signer(signKey: string): TrustedKey | undefined {
    return this.bySign.get(signKey);
  }

  /** The entry whose X25519 key (base64) this is. */
  boxOwner(boxKey: string): TrustedKey | undefined {
    return this.byBox.get(boxKey);
  }

  withRole(role: KeyRole): TrustedKey[] {
    return [...this.byName.values()].filter((k) => k.roles.has(role));
  }
}
