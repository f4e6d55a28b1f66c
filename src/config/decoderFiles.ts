import type { StageConfig } from './schema.js';

type Decoder = StageConfig['decoder'];
/** The decoder fields that name a file: a CTC decoder's dictionary, a detector's or classifier's labels file. */
export type DecoderFileField = 'dictionary' | 'labels';

/** The files a decoder names, each with its field: the one place that knows which fields those are. */
export function decoderFiles(d: Decoder): { field: DecoderFileField; file: string }[] {
  if (d.type === 'ctc') return [{ field: 'dictionary', file: d.dictionary }];
  if ('labels' in d && typeof d.labels === 'string') return [{ field: 'labels', file: d.labels }];
  return [];
}

/** The decoder with each file it names mapped through `f` (resolved to a path, named by its sha256, or back). */
export function mapDecoderFiles<D extends Decoder>(d: D, f: (file: string) => string): D {
  return { ...d, ...Object.fromEntries(decoderFiles(d).map(({ field, file }) => [field, f(file)])) };
}
