// What the desktop window may load and do. The renderer is treated as untrusted: it can reach the
// app only through the preload's API, never navigate away, open windows, ask for permissions
// (camera, notifications, ...) or load anything the CSP does not allow.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Session, type WebContents, shell } from 'electron';
import { SECURITY_HEADERS, contentSecurityPolicy } from '../server/csp.ts';

/** Where the page comes from: the built index.html, or the vite dev server in development. */
export interface AppOrigin {
  indexFile: string;
  devServerUrl: string | null;
}

/** Whether `url` is the app's own page (any hash or query), so IPC from it may be served. */
export function isAppUrl(origin: AppOrigin, url: string | undefined | null): boolean {
  if (!url) return false;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (origin.devServerUrl) return parsed.origin === new URL(origin.devServerUrl).origin;
  if (parsed.protocol !== 'file:') return false;
  try {
    return path.resolve(fileURLToPath(parsed)) === path.resolve(origin.indexFile);
  } catch {
    return false;
  }
}

/** Open a link in the system browser: http(s) only, never file:, javascript: or custom schemes. */
export function openExternalSafely(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return;
  }
  if (parsed.protocol === 'http:' || parsed.protocol === 'https:') void shell.openExternal(parsed.href);
}

/** CSP and security headers on every response, and no permission ever granted. */
export function hardenSession(session: Session, origin: AppOrigin): void {
  // The dev server's hot reload talks over a WebSocket to its own host.
  const connect = origin.devServerUrl ? [new URL(origin.devServerUrl).origin.replace(/^http/, 'ws')] : [];
  const policy = contentSecurityPolicy({ connect });
  session.webRequest.onHeadersReceived((details, callback) => {
    const headers: Record<string, string[]> = {};
    for (const [name, value] of Object.entries(details.responseHeaders ?? {})) {
      // Replace, not add to, whatever policy a response brought (two policies both apply).
      if (name.toLowerCase() !== 'content-security-policy') headers[name] = value;
    }
    headers['Content-Security-Policy'] = [policy];
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) headers[name] = [value];
    callback({ responseHeaders: headers });
  });
  session.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  session.setPermissionCheckHandler(() => false);
}

/** Every web contents: no navigation away from the app, no new windows, no webviews. */
export function hardenContents(contents: WebContents, origin: AppOrigin): void {
  contents.on('will-navigate', (event, url) => {
    if (isAppUrl(origin, url)) return;
    event.preventDefault();
    openExternalSafely(url);
  });
  contents.on('will-redirect', (event, url) => {
    if (!isAppUrl(origin, url)) event.preventDefault();
  });
  contents.setWindowOpenHandler(({ url }) => {
    openExternalSafely(url);
    return { action: 'deny' };
  });
  contents.on('will-attach-webview', (event) => event.preventDefault());
}
