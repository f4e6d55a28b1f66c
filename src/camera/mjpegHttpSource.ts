import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { JpegStreamParser } from './jpegStreamParser.js';

export interface MjpegHttpOptions {
  url: string;
  username?: string;
  password?: string;
}

function open(opts: MjpegHttpOptions, signal: AbortSignal): Promise<IncomingMessage> {
  const url = new URL(opts.url);
  const user = opts.username ?? decodeURIComponent(url.username);
  const pass = opts.password ?? decodeURIComponent(url.password);
  url.username = '';
  url.password = '';
  const headers: Record<string, string> = { accept: 'multipart/x-mixed-replace, image/jpeg' };
  if (user) headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, signal }, (res) => {
      if (res.statusCode === 401) reject(new Error(`${url.origin} refused the credentials (401); check username/password`));
      else if (res.statusCode !== 200) reject(new Error(`${url.href} answered HTTP ${res.statusCode}`));
      else return resolve(res);
      res.resume();
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Frames of a `multipart/x-mixed-replace` MJPEG stream (IP cameras, ESP32-CAM). The parts are cut at JPEG
 * markers, which works whatever boundary or part headers the camera sends.
 */
export async function* mjpegHttpFrames(opts: MjpegHttpOptions, signal: AbortSignal, parser: JpegStreamParser): AsyncIterable<Buffer> {
  const res = await open(opts, signal);
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      for (const frame of parser.push(chunk)) yield frame;
    }
  } finally {
    res.destroy();
  }
  if (!signal.aborted) throw new Error(`${opts.url}: the stream ended`);
}
