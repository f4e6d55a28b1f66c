import { OutpostError, errorMessage } from '../errors.js';

/** A broker URL fit for logs and errors: its password shown as `***` (the user name stays: it says which login). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
  }
}

/** CONNACK codes that mean the broker refused this login (MQTT 5: 134, 135; MQTT 3.1.1: 4, 5). */
const LOGIN_REFUSED: Record<number, string> = {
  4: 'bad user name or password',
  5: 'not authorized',
  134: 'bad user name or password',
  135: 'not authorized',
};

/** Why the broker refused the login, or null when the failure was something else (unreachable, TLS …). */
export function loginRefusal(err: unknown): string | null {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? (LOGIN_REFUSED[code] ?? null) : null;
}

/**
 * The error for a broker connection that failed: a refused login says so and what to check (the broker is
 * there), anything else says the broker could not be reached. The URL's password never appears.
 */
export function brokerConnectError(url: string, err: unknown, credentials: string): OutpostError {
  const shown = redactUrl(url);
  const refused = loginRefusal(err);
  if (refused)
    return new OutpostError('OUTPOST_E_REFUSED', `the broker ${shown} refused the login (${refused}); check ${credentials} and the broker's ACL`, {
      cause: err,
    });
  return new OutpostError('OUTPOST_E_UNREACHABLE', `cannot connect to the broker ${shown} (${errorMessage(err)}); check the URL and that the broker runs`, {
    cause: err,
  });
}
