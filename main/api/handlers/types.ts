// What every handler module shares: the dependencies a handler gets, and the handler table type
// that ties each channel to its params and result in contract/index.ts, so a handler with the
// wrong params or result (or a channel without a handler) is a compile error.
import type { EngineHost } from '../../engine/host.ts';
import type { ExperimentDb } from '../../db/index.ts';
import type { RequestName, ResultOf, ValidParamsOf } from '../../../contract/index.ts';
import type { EventHub, RunManager, SettingsStore } from '../interfaces.ts';

export interface ApiDeps {
  db: ExperimentDb;
  databaseFile: string;
  /** The data folder (database, run checkpoints, imported models). */
  home: string;
  mode: 'electron' | 'web';
  version: string;
  /** Only its `call` is used (the devices probe), so tests can hand in a stand-in. */
  engine: Pick<EngineHost, 'call'>;
  runs: RunManager;
  events: EventHub;
  settings: SettingsStore;
  /**
   * The desktop shell's folder dialog (the person picks; null when they cancel). Absent in web
   * mode, where no request may name a path on the server: folders come from the command line.
   */
  pickFolder?: (purpose: FolderPurpose) => Promise<string | null>;
}

/** What a folder is picked for (the dialog's title and button say it). */
export type FolderPurpose = 'model' | 'dataFolder';

export type Handler<K extends RequestName> = (params: ValidParamsOf<K>, deps: ApiDeps) => ResultOf<K> | Promise<ResultOf<K>>;

/** A handler for each of the channels K. */
export type HandlerTable<K extends RequestName> = { [C in K]: Handler<C> };
