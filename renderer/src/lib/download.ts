// Saving a file the app made (a chart's PNG or CSV, a run's export) as a browser download: in
// web mode the browser saves what the server returned, so no path on the server is ever named.
import type { ExportedFile } from '../../../contract/index.ts';

export function saveBlob(blob: Blob, fileName: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.style.display = 'none';
  document.body.append(a);
  a.click();
  a.remove();
  // The download has its own copy once it started.
  setTimeout(() => URL.revokeObjectURL(url), 30_000);
}

/** A run's exported file (runs.export): text as it is, binary from its base64. */
export function saveExport(file: ExportedFile): void {
  const body = file.encoding === 'base64' ? Uint8Array.from(atob(file.data), (c) => c.charCodeAt(0)) : file.data;
  saveBlob(new Blob([body], { type: file.mediaType }), file.fileName);
}

/** A file name from a title: letters, digits, dots, dashes. */
export function fileSafe(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').toLowerCase() || 'chart';
}
