// The desktop shell's folder dialog, the only way a request of the page gets a path: the API
// asks (models.add, settings.chooseDataFolder) and the person picks, or cancels.
import { type BrowserWindow, type OpenDialogOptions, dialog } from 'electron';
import type { FolderPurpose } from '../api/handlers/types.ts';

const DIALOGS: Record<FolderPurpose, OpenDialogOptions> = {
  model: {
    title: 'Add a model folder',
    message: 'Choose a Hugging Face model folder (config.json, *.safetensors, tokenizer.json)',
    buttonLabel: 'Add folder',
    properties: ['openDirectory'],
  },
  dataFolder: {
    title: 'Choose the data folder',
    message: 'Where the database, checkpoints and imported models live (used from the next start)',
    buttonLabel: 'Use this folder',
    properties: ['openDirectory', 'createDirectory'],
  },
};

/** Asks the person for a folder, over the app's window where one is open; null when they cancel. */
export function folderPicker(window: () => BrowserWindow | null): (purpose: FolderPurpose) => Promise<string | null> {
  return async (purpose) => {
    const win = window();
    const options = DIALOGS[purpose];
    const picked = win ? await dialog.showOpenDialog(win, options) : await dialog.showOpenDialog(options);
    return picked.canceled ? null : (picked.filePaths[0] ?? null);
  };
}
