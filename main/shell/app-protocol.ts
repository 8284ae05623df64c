// The desktop window's page comes from the app's own scheme, app://autodidact/, not file://.
// Every response of this scheme is made here, with the app's CSP and security headers on it, so
// the policy applies for certain (pages from file:// may not pass through the session's header
// hook, and file:// pages get privileges of their own, which the electronFuses in
// electron-builder.yml switch off). Only files inside the renderer's build folder are served.
import fs from 'node:fs/promises';
import path from 'node:path';
import { SECURITY_HEADERS, contentSecurityPolicy } from '../server/csp.ts';

export const APP_SCHEME = 'app';
export const APP_HOST = 'autodidact';
export const APP_INDEX_URL = `${APP_SCHEME}://${APP_HOST}/index.html`;

/** For protocol.registerSchemesAsPrivileged, before 'ready': a standard, secure origin of its own. */
export const APP_SCHEME_PRIVILEGES = {
  scheme: APP_SCHEME,
  privileges: { standard: true, secure: true, supportFetchAPI: true, codeCache: true },
} as const;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.map': 'application/json; charset=utf-8',
};

/** The file `url` names inside `root`, or null when it is not an app URL or leaves `root`. */
export function appFileFor(root: string, url: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  if (parsed.protocol !== `${APP_SCHEME}:` || parsed.host !== APP_HOST) return null;
  let relative: string;
  try {
    // Decoded, so an encoded separator or dot segment (%2f, %2e%2e) is checked as what it is.
    relative = decodeURIComponent(parsed.pathname);
  } catch {
    return null;
  }
  if (relative.includes('\0')) return null;
  if (relative === '/' || relative === '') relative = '/index.html';
  const base = path.resolve(root);
  const file = path.resolve(base, `.${relative}`);
  return file.startsWith(base + path.sep) ? file : null;
}

/** Headers of every app:// response. */
export function appHeaders(contentType: string): Record<string, string> {
  return { 'Content-Type': contentType, 'Content-Security-Policy': contentSecurityPolicy(), ...SECURITY_HEADERS };
}

/** The response to one app:// request: the file, or 404 / 405, always with the app's headers. */
export async function serveAppRequest(root: string, request: { url: string; method: string }): Promise<Response> {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    return new Response('method not allowed', { status: 405, headers: appHeaders('text/plain; charset=utf-8') });
  }
  const file = appFileFor(root, request.url);
  const notFound = () => new Response('not found', { status: 404, headers: appHeaders('text/plain; charset=utf-8') });
  if (!file) return notFound();
  try {
    const stat = await fs.stat(file);
    if (!stat.isFile()) return notFound();
    const body = request.method === 'HEAD' ? null : await fs.readFile(file);
    return new Response(body, { status: 200, headers: appHeaders(CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream') });
  } catch {
    return notFound();
  }
}
