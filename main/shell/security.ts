// What the desktop window may load and do. The renderer is treated as untrusted: it can reach the
// app only through the preload's API, never navigate away, open windows, ask for permissions
// (camera, notifications, ...) or load anything the CSP does not allow.
import { BrowserWindow, type MessageBoxOptions, type Session, type WebContents, dialog, shell } from 'electron';
import { SECURITY_HEADERS, contentSecurityPolicy } from '../server/csp.ts';
import { APP_HOST, APP_SCHEME } from './app-protocol.ts';

/** Where the page comes from: the renderer's build folder (served as app://), or the vite dev server in development. */
export interface AppOrigin {
  rendererDir: string;
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
  return parsed.protocol === `${APP_SCHEME}:` && parsed.host === APP_HOST && parsed.pathname === '/index.html';
}

/** The question asked before a link leaves the app, naming the address in full. */
export function externalLinkQuestion(href: string): MessageBoxOptions {
  return {
    type: 'question',
    buttons: ['Open in browser', 'Cancel'],
    defaultId: 1,
    cancelId: 1,
    message: 'Open this link in your browser?',
    detail: href,
    noLink: true,
  };
}

/**
 * Open a link in the system browser, http(s) only (never file:, javascript: or custom schemes),
 * and only after the person agreed: a page or a model's text could otherwise send them anywhere.
 */
export async function openExternalSafely(url: string, ask: (question: MessageBoxOptions) => Promise<number> = askInWindow): Promise<boolean> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return false;
  if ((await ask(externalLinkQuestion(parsed.href))) !== 0) return false;
  await shell.openExternal(parsed.href);
  return true;
}

async function askInWindow(question: MessageBoxOptions): Promise<number> {
  const win = BrowserWindow.getFocusedWindow();
  const { response } = win ? await dialog.showMessageBox(win, question) : await dialog.showMessageBox(question);
  return response;
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
    void openExternalSafely(url);
  });
  contents.on('will-redirect', (event, url) => {
    if (!isAppUrl(origin, url)) event.preventDefault();
  });
  contents.setWindowOpenHandler(({ url }) => {
    void openExternalSafely(url);
    return { action: 'deny' };
  });
  contents.on('will-attach-webview', (event) => event.preventDefault());
}
