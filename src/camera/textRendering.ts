import sharp from 'sharp';

/**
 * Whether this machine can draw text into an SVG (librsvg through fontconfig). A minimal OS without fontconfig or
 * fonts draws every glyph as the same empty box ("tofu"): the demo's frames then read `0□□□000`, so two different
 * strings rendering to the same pixels is the sign. Measured once per process (~100 ms).
 */
let verdict: Promise<boolean> | null = null;

export function canDrawText(): Promise<boolean> {
  verdict ??= Promise.all([drawn('AO'), drawn('7W')]).then(
    ([a, b]) => !a.equals(b),
    () => false,
  );
  return verdict;
}

export const NO_FONTS_HINT =
  'this machine has no font that SVG text can be drawn with (fontconfig finds none), so the demo camera would draw ' +
  'empty boxes: install one, e.g. `apt-get install fonts-dejavu-core fontconfig` (Debian, Raspberry Pi OS, Ubuntu)';

function drawn(text: string): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="48" height="24"><rect width="48" height="24" fill="#fff"/><text x="2" y="19" font-family="DejaVu Sans,sans-serif" font-size="18" fill="#000">${text}</text></svg>`;
  return sharp(Buffer.from(svg)).greyscale().raw().toBuffer();
}
