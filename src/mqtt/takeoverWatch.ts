/** MQTT v5 DISCONNECT reason "Session taken over": another client connected with the same client id. */
const SESSION_TAKEN_OVER = 0x8e;

export const TAKEOVER_HINT =
  'another process uses this client id: a second outpost on this device id (another state folder or board with the same node.name / telemetry.mqtt.deviceId)';

/** What a closed connection means for the log. */
export type CloseKind =
  /** the broker said another client took the session (DISCONNECT 0x8E) */
  | 'taken-over'
  /** the broker ended a live connection without saying why: a takeover if it takes us back at once, else an outage */
  | 'ended-by-broker'
  /** a live connection failed on our side (keepalive, reset) */
  | 'lost'
  /** a broker that ended our connection did not take the next attempt: it is gone */
  | 'broker-gone'
  /** another failed attempt while away */
  | 'attempt-failed';

/**
 * Tells a session taken over by another client with our client id from a broker that went away. Brokers that
 * say so (DISCONNECT 0x8E) are believed; others (Mosquitto 2.0.11 just closes the socket) are judged by the
 * next attempt: a broker that ended a live connection and takes the very next one is there, so someone else
 * took our session.
 */
export class TakeoverWatch {
  private reason: number | null = null;
  private socketError: string | null = null;
  private endedByBroker = false;
  private attempts = 0;

  /** A new connection attempt begins. */
  attempt(): void {
    this.attempts++;
    [this.reason, this.socketError] = [null, null];
  }

  disconnectPacket(reasonCode: number | undefined): void {
    this.reason = reasonCode ?? 0;
  }

  error(message: string): void {
    this.socketError = message;
  }

  closed(wasConnected: boolean): CloseKind {
    if (this.reason === SESSION_TAKEN_OVER) return this.reset('taken-over');
    if (wasConnected) {
      this.attempts = 0;
      this.endedByBroker = this.socketError === null || /ended by the other party/.test(this.socketError);
      return this.endedByBroker ? 'ended-by-broker' : 'lost';
    }
    if (this.endedByBroker) return this.reset('broker-gone');
    return 'attempt-failed';
  }

  /** Connected: true when this came at the first attempt after the broker ended the last connection (a takeover). */
  connected(): boolean {
    const takenOver = this.endedByBroker && this.attempts === 1;
    this.reset('attempt-failed');
    return takenOver;
  }

  private reset(kind: CloseKind): CloseKind {
    this.endedByBroker = false;
    this.attempts = 0;
    return kind;
  }
}
