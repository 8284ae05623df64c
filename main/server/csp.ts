// The one Content-Security-Policy of the app, sent by web mode on every response and set by the
// Electron shell on every response its window loads. Svelte 5 compiles templates ahead of time,
// so no 'unsafe-eval'; 'unsafe-inline' styles are for the style attributes Svelte writes.

/** The policy; `connect` adds sources the page may open (web mode: its own ws:// origin). */
export function contentSecurityPolicy(options: { connect?: string[] } = {}): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    ["connect-src 'self'", ...(options.connect ?? [])].join(' '),
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'none'",
  ].join('; ');
}

/** Headers every response of the app carries besides the CSP. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};
