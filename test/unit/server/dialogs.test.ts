// The desktop shell's folder dialog, the one way a request of the page gets a path (issue 21.4):
// a folder dialog (never a file one) over the app's window, with the purpose in its title, and
// null when the person cancels. Electron's dialog is stood in for; the rest is the real module.
import { beforeEach, describe, expect, it, vi } from 'vitest';

const showOpenDialog = vi.fn();
vi.mock('electron', () => ({ dialog: { showOpenDialog } }));
const { folderPicker } = await import('../../../main/shell/dialogs.ts');

beforeEach(() => showOpenDialog.mockReset());

describe('folderPicker', () => {
  it('asks for a folder over the window, and gives the one picked', async () => {
    const win = { id: 1 };
    showOpenDialog.mockResolvedValue({ canceled: false, filePaths: ['/home/me/Qwen2.5-0.5B'] });
    const pick = folderPicker(() => win as never);
    expect(await pick('model')).toBe('/home/me/Qwen2.5-0.5B');
    const [parent, options] = showOpenDialog.mock.calls[0] as [unknown, { title: string; properties: string[] }];
    expect(parent).toBe(win);
    expect(options.title).toBe('Add a model folder');
    expect(options.properties).toEqual(['openDirectory']);
  });

  it('gives null when the person cancels, and works without a window', async () => {
    showOpenDialog.mockResolvedValue({ canceled: true, filePaths: [] });
    const pick = folderPicker(() => null);
    expect(await pick('dataFolder')).toBeNull();
    const [options] = showOpenDialog.mock.calls[0] as [{ title: string; properties: string[] }];
    expect(options.title).toBe('Choose the data folder');
    expect(options.properties).toContain('openDirectory');
    expect(options.properties).not.toContain('openFile');
  });
});
