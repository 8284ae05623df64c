// The API contract between the app's user interface and its main process: the one place to learn
// what the app can do. Request channels map a name to zod-validated params and a result type;
// event channels map a name to a payload type. Both transports carry exactly this contract:
// Electron IPC (preload/index.ts exposes it as `window.autodidact`) and the WebSocket of web
// mode (main/server/), so the renderer cannot tell them apart.
//
// Everything here is plain data (JSON-serialisable): no class, Buffer or typed array crosses.
// This module must stay importable from the renderer, the preload and the main process alike:
// it imports nothing but zod.
import { z } from 'zod';

// --- shared shapes ------------------------------------------------------------------------

export const RUN_STATUSES = ['queued', 'running', 'paused', 'completed', 'failed', 'stopped'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
export const DEVICE_REQUESTS = ['auto', 'cpu', 'webgpu', 'cuda'] as const;
export type DeviceRequest = (typeof DEVICE_REQUESTS)[number];
export const DATASET_FORMATS = ['jsonl', 'csv', 'tsv'] as const;
/** The encodings a dataset file may be declared in; without one it must be UTF-8. */
export const DATASET_ENCODINGS = ['utf-8', 'windows-1252', 'latin1', 'utf-16le', 'utf-16be'] as const;

export interface AppInfo {
  version: string;
  /** 'electron' in the desktop app, 'web' in `autodidact serve`. */
  mode: 'electron' | 'web';
  /** The data folder: database, checkpoints, imported models. */
  dataHome: string;
  databaseFile: string;
  platform: string;
}

export interface Settings {
  /** Data folder override (takes effect at the next start); null = the default per-user folder. */
  dataFolder: string | null;
  defaultDevice: DeviceRequest;
  /** onnxruntime threads; null = every core. */
  threads: number | null;
}

export interface DeviceInfo {
  name: 'cpu' | 'webgpu' | 'cuda';
  available: boolean;
  /** Why it cannot run here (absent when it can). */
  reason?: string;
  /** Adapter or processor name, where known. */
  adapter?: string;
}

export interface DevicesReport {
  devices: DeviceInfo[];
  /** What `auto` resolves to here. */
  auto: string;
  threads: number;
  onnxruntime: string;
}

export interface DatasetSummary {
  id: number;
  name: string;
  /** The imported file, or e.g. 'generator:arithmetic'. */
  source: string | null;
  itemCount: number;
  trainCount: number;
  evalCount: number;
  /** How many items carry an evaluation-only answer. */
  answerCount: number;
  createdAt: string;
  /** When it was archived (hidden from pickers; its runs and reviews keep working), or null. */
  archivedAt: string | null;
}

/** What depends on a dataset: what deleting it would destroy, and why it may only be archived. */
export interface DatasetUsageView {
  runs: { id: number; name: string; status: RunStatus; /** The process training it now, if another one is. */ trainingPid: number | null }[];
  /** Reviews of its items or of its runs' groups. */
  reviews: number;
  /** Deleting is allowed only when nothing depends on it; otherwise archive it. */
  deletable: boolean;
}

export interface DatasetItemView {
  idx: number;
  prompt: string;
  /** The hidden label: shown to the person, never given to a reward. */
  evalAnswer: string | null;
  split: 'train' | 'eval';
}

export interface DatasetPreviewView {
  format: (typeof DATASET_FORMATS)[number];
  fields: string[];
  mapping: { prompt: string; answer: string | null; guessed: { prompt: boolean; answer: boolean } } | null;
  mappingNote: string;
  items: { prompt: string; answer: string | null }[];
  /** How many items the file holds (when it parses); with `partial`, how many its first PREVIEW_MAX_BYTES hold: at least that many. */
  total: number | null;
  /** Why the file would not import as it stands (with its line), or null. */
  error: string | null;
  /**
   * True when only the file's first PREVIEW_MAX_BYTES were read (cut at a line boundary): the
   * fields, the mapping and the error are those of that part, and the import checks the rest.
   */
  partial: boolean;
}

export interface ModelEntry {
  /** Null for a built-in model that was never added to the database. */
  id: number | null;
  name: string;
  path: string;
  builtin: boolean;
  architecture: string | null;
  parameterCount: number | null;
  dtype: string | null;
  /** Set when the folder cannot be loaded: the reason, naming the file or field. */
  error: string | null;
}

/** One setting of a run, for the New-run form: its default, its one-line explanation and its type. */
export interface RunSettingInfo {
  name: string;
  default: unknown;
  description: string;
  /** 'text': free text, possibly several lines (a prompt template). */
  kind: 'number' | 'integer' | 'boolean' | 'enum' | 'string-list' | 'enum-list' | 'text';
  options?: string[];
  min?: number;
  max?: number;
  /** The method whose own setting it is (shown and sent only for that method); absent for common settings. */
  method?: string;
}

/** A problem with a run's settings: the setting to change and a sentence that names it. */
export interface SettingProblem {
  setting: string;
  message: string;
}

/** A metric runs log: how to label, explain and chart it. A key ending in `@k` stands for every k. */
export interface MetricInfo {
  key: string;
  label: string;
  description: string;
  /** The chart (ChartInfo.id) that draws it; null: offered under "More metrics". */
  chart: string | null;
  /** Values lie in [0, 1]. */
  unit: boolean;
  /** Measured against hidden answers, never a reward. */
  groundTruth: boolean;
  /** The method that logs it; null for the metrics every run logs. */
  method: string | null;
}

export interface ChartInfo {
  id: string;
  title: string;
  hint: string;
  unit: boolean;
  /** Drawn only for runs whose setting has this value (the critic's charts: advantage gae). */
  when?: { setting: string; equals: string };
}

/** A label-free method a run can use. */
export interface MethodInfo {
  id: string;
  label: string;
  description: string;
  /** How a run of it is driven: 'group-reward' (sample a group per prompt, score it, a policy-gradient step). */
  pipeline: string;
  /** Names of its own settings (their descriptions are in runs.settings, tagged with the method). */
  settings: string[];
  /** Common settings whose default it changes (its reference recipe). */
  defaults: Record<string, unknown>;
}

/** Every method, every metric (common ones first) and the run view's charts, from the method registry. */
export interface MethodCatalog {
  methods: MethodInfo[];
  metrics: MetricInfo[];
  charts: ChartInfo[];
}

/** How a run formats its prompts (the run setting `promptFormat`). */
export const PROMPT_FORMATS = ['raw', 'chat'] as const;

/** A prompt exactly as the model will be given it, for the New-run view. */
export interface PromptPreview {
  /** The prompt as the dataset holds it. */
  prompt: string;
  /** Which training item it is (dataset_items.idx), or null for a prompt given in the request. */
  itemIdx: number | null;
  promptFormat: (typeof PROMPT_FORMATS)[number];
  /** The token ids decoded with their special tokens (BOS, the chat template's markers): what the model reads. */
  text: string;
  tokenCount: number;
  /** Whether the model has a chat template (promptFormat 'chat' needs one). */
  hasChatTemplate: boolean;
  /** The model's context length (config.json's max_position_embeddings), where it says. */
  contextLength: number | null;
}

export interface RunProgress {
  step: number;
  steps: number;
  /** What the engine is doing now: 'rollout', 'update', 'validate', 'checkpoint', ... */
  phase: string;
  /** Seconds to the end at the recent pace; null until a step has finished. */
  etaSeconds: number | null;
}

export interface RunView {
  id: number;
  name: string;
  /** local: trained by this app; external: trained by verl on a cluster and imported (`autodidact cluster import`), never started or resumed here. */
  kind: 'local' | 'external';
  method: string;
  model: string;
  dataset: string;
  datasetId: number | null;
  status: RunStatus;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  currentStep: number | null;
  steps: number;
  /** The full stored configuration (loop settings, model, dataset, device). */
  config: Record<string, unknown>;
  /** Live progress while the run is in the engine; null otherwise. */
  progress: RunProgress | null;
  /** The key metric at a glance: the validation metric that picks the best checkpoint. */
  keyMetric: { name: string; value: number | null; best: number | null; bestStep: number | null };
  reviewCount: number;
  /** A person's tags on the run, sorted. */
  tags: string[];
  /** When its last step was recorded (a paused run's duration ends there); null before the first. */
  lastStepAt: string | null;
  /**
   * A run with no checkpoint to continue from but with training steps recorded: its last step,
   * all of which a resume trains again from step 0 (runs.resume refuses that without `restart`).
   * null: a resume loses nothing.
   */
  stepsLostOnResume: number | null;
}

export interface MetricPoint {
  step: number;
  key: string;
  /** null where the value was NaN. */
  value: number | null;
}

/** When a step was recorded and the tokens it processed: the wall-time and tokens x-axes of charts. */
export interface StepTimeView {
  step: number;
  /** ISO 8601 (UTC) time the step was recorded. */
  recordedAt: string;
  /** Prompt plus completion tokens of the step's rollout; null for validation-only steps and steps recorded before tokens were kept. */
  tokens: number | null;
}

/** The files of a run's export, as `autodidact export` writes them. */
export const EXPORT_KINDS = ['metrics', 'samples', 'completions'] as const;
export type ExportKind = (typeof EXPORT_KINDS)[number];

/** One exported file, for the page to save: text as it is, binary (Parquet) as base64. */
export interface ExportedFile {
  fileName: string;
  mediaType: string;
  encoding: 'utf-8' | 'base64';
  data: string;
}

/** The import form's evaluation share: a fraction of the labeled items, below 1 (some must train). */
const EVAL_SHARE_RANGE = 'the evaluation share must be at least 0 and below 1';

/** The largest export the app hands over in one message; `autodidact export` writes larger ones to a folder. */
export const MAX_EXPORT_BYTES = 100 * 1024 * 1024;

export interface AlertView {
  id: number;
  step: number | null;
  kind: string;
  message: string;
  createdAt: string;
}

export interface CheckpointView {
  step: number;
  kind: 'best' | 'last';
  path: string;
  metric: number | null;
}

export interface RunDetail {
  run: RunView;
  metricKeys: string[];
  steps: number[];
  checkpoints: CheckpointView[];
  alerts: AlertView[];
}

export interface GroupSummary {
  rolloutId: number;
  step: number;
  groupIdx: number;
  itemIdx: number | null;
  prompt: string;
  pseudoLabel: string | null;
  /** The hidden label where the dataset has one (measurement only). */
  truth: string | null;
  voteCounts: Record<string, number>;
  majorityRatio: number | null;
  labelCorrect: boolean | null;
  labeled: boolean;
  /** High majority ratio but a wrong pseudo-label (against the hidden truth). */
  confidentMistake: boolean;
  /** Majority ratio below the low-consensus threshold. */
  lowConsensus: boolean;
  /** The prompt's pseudo-label differs from the one it got the previous time it was drawn. */
  labelChanged: boolean;
  previousLabel: string | null;
  review: ReviewView | null;
  /** 'review': the group trained toward a person's label (a run started from reviews), not its vote. */
  labelSource: 'vote' | 'review';
  /** For a group that took a person's label: how many of its samples agree with it (0: the group gave no gradient). */
  reviewMatches: number | null;
}

/** A page of the review queue, with the counts over every group the selection matches. */
export interface GroupPage {
  groups: GroupSummary[];
  /** How many groups match, and how many of those a person reviewed ("x of y reviewed"). */
  total: number;
  reviewed: number;
  /** Of those not reviewed, how many have a pseudo-label to agree with (what "Agree with all" offers). */
  agreeable: number;
  offset: number;
  /** The run's newest group (rollout id) when counted: `reviews.agreeAll` goes no further. */
  asOf: number | null;
}

export interface TokenView {
  text: string;
  logprob: number | null;
  entropy: number | null;
  /** KL(uniform ‖ p) of the distribution the token was sampled from; null for samples stored before it was kept. */
  selfCertainty: number | null;
}

export interface SampleView {
  id: number;
  idx: number;
  text: string;
  extractedAnswer: string | null;
  reward: number | null;
  advantage: number | null;
  usedForTraining: boolean;
  /** The method's parts of the reward (certainty, prior, judge score, ...); null where it gave none. */
  details: Record<string, number> | null;
  /** What the method's judge (a frozen copy of the model) was asked about this sample and answered; null where none was asked. */
  judge: { prompt: string; response: string } | null;
  /** The response split into its tokens with their log-probs, entropies and self-certainties. */
  tokens: TokenView[];
  /** Its outcome against the task's hidden answer where the method checks one (code: the hidden tests' pass, fail, error or timeout); evaluation only. */
  hiddenResult: string | null;
}

/** One cell of a code group's execution matrix: the test's asserts held, one failed, the program raised otherwise, or ran out of time. */
export type ExecutionOutcome = 'pass' | 'fail' | 'error' | 'timeout';

/** What a code group's programs did (method code-consensus): every sample's function against every test the group wrote. */
export interface CodeExecutionView {
  language: 'python' | 'javascript';
  /** Per sample (by idx): the function it wrote, as run; null where it wrote no code block. */
  solutions: (string | null)[];
  /** The group's tests, pooled in the order written, and the samples (idx) that wrote each. */
  tests: string[];
  authors: number[][];
  /** `matrix[s][t]`: sample s's function against test t. */
  matrix: ExecutionOutcome[][];
  /** Consensus sets (samples passing exactly the same tests; score #samples × #tests), highest first. */
  sets: { solutions: number[]; tests: number[]; score: number }[];
  /** Index into `sets` of the top set, whose agreement the rewards follow; null when no sample passed a test. */
  top: number | null;
  /** Per test: its credit (passes the whole top set × share of the other samples it fails). */
  testRewards: number[];
  /** Self-debugging turns (setting codeDebugTurn): samples whose function failed some test, revised; absent when the run had none. */
  revisions?: CodeRevisionView[];
}

/** A sample's second turn: the message it read (the failing tests and their errors), its revision, and how the revised function did. */
export interface CodeRevisionView {
  /** The sample revised (its idx). */
  sample: number;
  feedback: string;
  text: string;
  /** The revised function (null: the revision wrote no code block). */
  solution: string | null;
  /** The revised function against each of the group's tests. */
  row: ExecutionOutcome[];
  /** Its consensus score among the group's functions and the revisions (over the largest possible). */
  reward: number;
  /** Its advantage among the group's revisions (0 or absent: not trained), and its hidden-test outcome where checked. */
  advantage?: number;
  hiddenResult?: string;
}

export interface GroupDetail {
  group: GroupSummary;
  samples: SampleView[];
  /** A code group's execution matrix; null for other methods' groups. */
  execution: CodeExecutionView | null;
}

export interface ReviewView {
  id: number;
  runId: number | null;
  rolloutId: number | null;
  datasetId: number | null;
  itemIdx: number | null;
  verdict: 'agree' | 'override';
  label: string | null;
  /** The reviewer's note (why, what to look at), or null. */
  note: string | null;
  createdAt: string;
}

/** OPID's skill kinds: an episode's workflow (from a success) or avoidance rule (from a failure), or a step skill. */
export const SKILL_KINDS = ['workflow', 'avoidance', 'step'] as const;
export type SkillKind = (typeof SKILL_KINDS)[number];

/** A skill of an agent run's library. */
export interface SkillView {
  id: number;
  runId: number;
  step: number;
  kind: SkillKind;
  text: string;
  /** The episode (sample id) it was analysed from, for episodes.get; null when that is gone. */
  sampleId: number | null;
  /** The turn (1-based) a step skill is for. */
  turn: number | null;
  /** The goal of the episode it came from. */
  task: string;
  /** How many replies it taught (as OPID's teacher). */
  useCount: number;
  /** A person edited its text. */
  editedByPerson: boolean;
  createdAt: string;
  updatedAt: string | null;
}

export interface EpisodeTurnView {
  turn: number;
  /** The user message the policy read (observation and request). */
  prompt: string;
  reply: string;
  action: string;
  formatValid: boolean;
  /** The environment's answer to the action. */
  observation: string;
  reward: number | null;
  done: boolean;
  /** The skill that taught the reply (one of the episode's skills), if one did. */
  skillId: number | null;
  /** The reply's tokens as text pieces, with Δ = log π(token | skill + o) − log π(token | o) each; null where no skill taught it. */
  tokens: string[] | null;
  delta: number[] | null;
}

/** A self-verified distillation round's funnel (svd.rounds): candidates, survivors after each stage, the SFT set. */
export interface SvdRoundView {
  round: number;
  status: 'judging' | 'review' | 'training' | 'trained';
  /** The stage ids in the order the round asked them. */
  stages: string[];
  candidates: number;
  /** Per stage: candidates that passed it and every stage before it. */
  survivors: number[];
  /** Per stage: the share of those survivors whose answer is right (hidden answers), or null where none has one. */
  precision: (number | null)[];
  /** Share of all candidates whose answer is right (hidden answers), or null. */
  rawAccuracy: number | null;
  /** The SFT set: selected survivors less those a person rejected. */
  sft: number;
  sftPrecision: number | null;
  /** Survivors a person rejected. */
  rejectedByReview: number;
}

/** A candidate of a distillation round with each stage's votes (svd.candidates). */
export interface SvdCandidateView {
  id: number;
  round: number;
  /** Position of its question in the round, and the dataset item. */
  question: number;
  itemIdx: number | null;
  prompt: string;
  idx: number;
  text: string;
  answer: string | null;
  /** Right against the hidden answer (measurement only), or null where there is none. */
  correct: boolean | null;
  /** Position of the stage that rejected it, or null. */
  rejectedStage: number | null;
  /** What became of a survivor: in the SFT set, a duplicate answer, or over the cap per question. */
  selection: 'sft' | 'duplicate' | 'cap' | null;
  review: { verdict: 'accept' | 'reject'; note: string | null } | null;
  stages: { stage: string; accepted: boolean; votes: { accept: boolean | null; exchanges: { prompt: string; response: string }[] }[] }[];
}

export const SVD_FILTERS = ['all', 'survivors', 'sft', 'rejected', 'survived-wrong'] as const;

/** An agent episode, turn by turn (episodes.get). */
export interface EpisodeView {
  sampleId: number;
  runId: number;
  step: number;
  group: number;
  idx: number;
  env: string;
  difficulty: string;
  taskSeed: number;
  goal: string;
  success: boolean;
  reward: number | null;
  advantage: number | null;
  /** The episode ended because its next turn did not fit the model. */
  contextFull: boolean;
  /** Why the analyzer gave it no skills, and what it answered. */
  analysisError: { reason: string; raw: string } | null;
  turns: EpisodeTurnView[];
  skills: SkillView[];
}

export interface EpisodeSummary {
  sampleId: number;
  group: number;
  idx: number;
  goal: string;
  success: boolean;
  turns: number;
}

/** The review queue's filters: every group, or those a reviewer most needs to see. */
export const GROUP_FILTERS = ['all', 'confident-mistakes', 'low-consensus', 'label-changed', 'unreviewed', 'reviewed', 'review-label'] as const;
/** The default thresholds of the queue's flags (each a control in the inspector). */
export const REVIEW_THRESHOLDS = { confidentAbove: 0.7, lowConsensusBelow: 0.5 } as const;

export interface LogLine {
  time: string;
  level: 'info' | 'warn' | 'error';
  message: string;
}

// --- size limits --------------------------------------------------------------------------

const MIB = 1024 * 1024;
/**
 * The largest WebSocket message web mode reads (`ws`'s maxPayload, for a whole message however
 * it is fragmented). A larger one closes that socket with 1009 (Message Too Big) before it is
 * buffered. Well below V8's longest string (2^29 − 24 characters), which a message is decoded
 * into: past that, decoding throws and the server went down with it.
 */
export const MAX_MESSAGE_BYTES = 256 * MIB;
/**
 * The longest file text a request may carry (datasets.preview / datasets.import). Its JSON
 * (quotes, escaped newlines and backslashes, UTF-8) fits MAX_MESSAGE_BYTES for text as files
 * hold it; the web client measures the encoded message and refuses a larger one before sending.
 */
export const MAX_UPLOAD_CHARS = 120 * MIB;
/** The largest file whose bytes a request may carry (base64 `data`: 160 MiB of text, within MAX_MESSAGE_BYTES). */
export const MAX_UPLOAD_BYTES = 120 * MIB;
/**
 * How much of a file `datasets.preview` reads: its first MiB (cut at a line boundary), so a
 * preview answers in a fraction of a second whatever the file's size and never holds up the
 * app's main thread; the import reads everything. A client may send only this much and one byte
 * more (so the app knows there is more).
 */
export const PREVIEW_MAX_BYTES = 1 * MIB;

// --- what a person runs on the app's machine ------------------------------------------------

/** A word for a POSIX shell: quoted when it holds anything but the characters paths usually hold. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The command that adds a model folder to the data folder `home` (web mode's way to add one). */
export function modelsAddCommand(home: string): string {
  return `AUTODIDACT_HOME=${shellQuote(home)} autodidact models add FOLDER [--name NAME]`;
}

/** The longest tag of a run, in characters. */
export const MAX_TAG_LENGTH = 40;

// --- request channels ---------------------------------------------------------------------

const id = z.number().int().nonnegative();
const fieldName = z.string().min(1).max(1024);
// eslint-disable-next-line no-control-regex
const tag = z.string().trim().min(1).max(MAX_TAG_LENGTH).regex(/^[^\u0000-\u001f\u007f]*$/, 'a tag is one line of text, without tabs or line breaks');
const partialMapping = z.object({ prompt: fieldName.optional(), answer: fieldName.nullable().optional() }).strict();
const fileUpload = {
  /** The file's name (its extension picks the format unless `format` is given). */
  fileName: z.string().min(1).max(1024),
  /** The file's contents as text (a request never carries a path), or else `data`. */
  text: z.string().max(MAX_UPLOAD_CHARS, `a file of at most ${MAX_UPLOAD_CHARS / MIB} Mi characters can be uploaded`).optional(),
  /**
   * The file's bytes, base64 (what the picker and drop send): the app decodes them as UTF-8, or
   * from `encoding`, and refuses bytes that are not text in it, naming the line.
   */
  data: z
    .string()
    .max(Math.ceil(MAX_UPLOAD_BYTES / 3) * 4, `a file of at most ${MAX_UPLOAD_BYTES / MIB} MiB can be uploaded`)
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64')
    .optional(),
  encoding: z.enum(DATASET_ENCODINGS).optional(),
  format: z.enum(DATASET_FORMATS).optional(),
  mapping: partialMapping.optional(),
};
/**
 * A preview's upload: the same fields, but its base64 is checked only as far as the preview
 * reads it (the handler checks that part), not scanned whole on the main thread.
 */
const previewUpload = { ...fileUpload, data: z.string().max(Math.ceil(MAX_UPLOAD_BYTES / 3) * 4, `a file of at most ${MAX_UPLOAD_BYTES / MIB} MiB can be uploaded`).optional() };
/** A file upload carries its contents once: as text, or as base64 bytes with an optional encoding. */
const oneContents = <T extends { text?: string; data?: string; encoding?: string }>(schema: z.ZodType<T>) =>
  schema
    .refine((p) => (p.text === undefined) !== (p.data === undefined), { message: 'give the file as text or as data (base64), exactly one of the two', path: ['data'] })
    .refine((p) => p.encoding === undefined || p.data !== undefined, { message: 'an encoding applies to data (the bytes); text is decoded already', path: ['encoding'] });

/** Which groups of a run the review queue (and a bulk agreement) covers. */
const groupSelection = {
  runId: id,
  /** One step; every step of the run when absent. */
  step: z.number().int().min(0).optional(),
  filter: z.enum(GROUP_FILTERS).default('all'),
  confidentAbove: z.number().min(0).max(1).default(REVIEW_THRESHOLDS.confidentAbove),
  lowConsensusBelow: z.number().min(0).max(1).default(REVIEW_THRESHOLDS.lowConsensusBelow),
};
const reviewNote = z.string().max(2000, 'a note of at most 2000 characters');

/** Every request: its params schema, and (as a type) its result. */
export const requests = {
  'app.info': { params: z.object({}).strict(), result: {} as AppInfo },
  'settings.get': { params: z.object({}).strict(), result: {} as Settings },
  /**
   * Changes the fields given. The data folder takes no path from a request (the page is not
   * trusted with the file system): only null, back to the default; settings.chooseDataFolder
   * lets the person pick one in the desktop app.
   */
  'settings.set': {
    params: z
      .object({
        dataFolder: z
          .null({ error: 'only null (back to the default folder) can be set here; choose a folder with "Choose…" in the desktop app, or start autodidact serve with AUTODIDACT_HOME=DIR' })
          .optional(),
        defaultDevice: z.enum(DEVICE_REQUESTS).optional(),
        threads: z.number().int().min(1).max(1024).nullable().optional(),
      })
      .strict(),
    result: {} as Settings,
  },
  /**
   * Desktop only: the person picks the data folder in the system's folder dialog (used from the
   * next start). `chosen` is false when they cancelled (nothing changed). Web mode answers
   * UNAVAILABLE: its data folder is the one `autodidact serve` was started with.
   */
  'settings.chooseDataFolder': { params: z.object({}).strict(), result: {} as { chosen: boolean; settings: Settings } },
  'devices.list': { params: z.object({ refresh: z.boolean().optional() }).strict(), result: {} as DevicesReport },

  /** The datasets to pick from; with `includeArchived`, the archived ones too (marked by `archivedAt`). */
  'datasets.list': { params: z.object({ includeArchived: z.boolean().optional() }).strict(), result: [] as DatasetSummary[] },
  'datasets.preview': { params: oneContents(z.object(previewUpload).strict()), result: {} as DatasetPreviewView },
  'datasets.import': {
    params: oneContents(z.object({ ...fileUpload, name: z.string().min(1).max(200).optional(), evalFraction: z.number().min(0, EVAL_SHARE_RANGE).lt(1, EVAL_SHARE_RANGE).optional() }).strict()),
    result: {} as { dataset: DatasetSummary; train: number; eval: number; mappingNote: string },
  },
  'datasets.generate': {
    params: z
      .object({ difficulty: z.number().int().min(1).max(4), seed: z.number().int().min(0).default(0), name: z.string().min(1).max(200).optional() })
      .strict(),
    result: {} as DatasetSummary,
  },
  'datasets.items': {
    params: z
      .object({ datasetId: id, offset: z.number().int().min(0).default(0), limit: z.number().int().min(1).max(500).default(50), search: z.string().max(500).optional(), split: z.enum(['train', 'eval']).optional() })
      .strict(),
    result: {} as { items: DatasetItemView[]; total: number },
  },
  /** What depends on a dataset (runs, reviews): shown before deleting or archiving it. */
  'datasets.usage': { params: z.object({ id }).strict(), result: {} as DatasetUsageView },
  /** Hides a dataset from pickers; its items, runs and reviews stay and keep working. */
  'datasets.archive': { params: z.object({ id }).strict(), result: {} as DatasetSummary },
  'datasets.restore': { params: z.object({ id }).strict(), result: {} as DatasetSummary },
  /** Deletes a dataset nothing depends on; CONFLICT (naming the runs and reviews) otherwise. */
  'datasets.delete': { params: z.object({ id }).strict(), result: {} as { deleted: boolean } },

  'models.list': { params: z.object({}).strict(), result: [] as ModelEntry[] },
  /**
   * Desktop only: the person picks a model folder in the system's folder dialog, which is checked
   * and added (under `name`, default the folder's name). `added` is null when they cancelled.
   * Web mode answers UNAVAILABLE, naming the command that adds a folder on the server's machine
   * (`autodidact models add FOLDER`): a request never names a path.
   */
  'models.add': { params: z.object({ name: z.string().min(1).max(200).optional() }).strict(), result: {} as { added: ModelEntry | null } },
  'models.remove': { params: z.object({ id }).strict(), result: {} as { removed: boolean } },

  'runs.settings': { params: z.object({}).strict(), result: [] as RunSettingInfo[] },
  'runs.methods': { params: z.object({}).strict(), result: {} as MethodCatalog },
  /**
   * Every problem with a run's settings (as runs.create takes them in `config`), each at its
   * setting: the New run form shows them inline before Launch. Empty when runs.create would take them.
   */
  'runs.checkConfig': {
    params: z.object({ config: z.record(z.string(), z.unknown()) }).strict(),
    result: {} as { problems: SettingProblem[] },
  },
  /**
   * `model` is a model of models.list: a built-in or added model's name, or exactly the path it
   * lists; `dataset` a stored dataset's name or "arithmetic" (the built-in generator). Neither is
   * ever read as a path: files come in through datasets.import and models.add.
   */
  'runs.create': {
    params: z
      .object({
        name: z.string().min(1).max(200).optional(),
        model: z.string().min(1).max(4096),
        dataset: z.string().min(1).max(4096),
        device: z.enum(DEVICE_REQUESTS).optional(),
        difficulty: z.number().int().min(1).max(4).optional(),
        /** Loop settings (RunConfig); unknown keys are refused, missing ones take their defaults. */
        config: z.record(z.string(), z.unknown()).default({}),
        /** The reviews of this run: their labels replace the model's votes for those prompts. */
        reviewsOf: id.optional(),
        /** Launch at once (default) or only record it, as 'paused' (it has no steps: resuming it starts it). */
        start: z.boolean().default(true),
      })
      .strict(),
    result: {} as RunView,
  },
  /** A prompt of a dataset (its first training item), or one given here, as the model will see it under `promptFormat`; `model` and `dataset` as in runs.create. */
  'runs.previewPrompt': {
    params: z
      .object({
        model: z.string().min(1).max(4096),
        dataset: z.string().min(1).max(4096).optional(),
        /** Difficulty and seed of the built-in arithmetic dataset, as runs.create takes them. */
        difficulty: z.number().int().min(1).max(4).optional(),
        seed: z.number().int().min(0).optional(),
        prompt: z.string().max(1_000_000).optional(),
        promptFormat: z.enum(PROMPT_FORMATS).default('raw'),
      })
      .strict()
      .refine((p) => p.dataset !== undefined || p.prompt !== undefined, { message: 'give a dataset or a prompt', path: ['dataset'] }),
    result: {} as PromptPreview,
  },
  'runs.list': { params: z.object({}).strict(), result: [] as RunView[] },
  /** Adds and removes a person's tags on a run (announced as a run.status event with the run as it is now). */
  'runs.tag': {
    params: z.object({ id, add: z.array(tag).max(20).default([]), remove: z.array(tag).max(20).default([]) }).strict(),
    result: {} as RunView,
  },
  'runs.get': { params: z.object({ id }).strict(), result: {} as RunDetail },
  'runs.pause': { params: z.object({ id }).strict(), result: {} as RunView },
  /**
   * reviewsOfItself: true trains on with the run's own reviews' labels from here; false, with votes only.
   * restart: a run with no checkpoint (RunView.stepsLostOnResume) trains again from step 0, replacing its steps; refused (CONFLICT) without it.
   */
  'runs.resume': { params: z.object({ id, reviewsOfItself: z.boolean().optional(), restart: z.boolean().optional() }).strict(), result: {} as RunView },
  'runs.stop': { params: z.object({ id }).strict(), result: {} as RunView },
  /**
   * Deletes a run with everything it recorded. A run holding reviews is refused (CONFLICT naming
   * how many) unless `discardReviews` says the person confirmed deleting them too; a run whose
   * reviewed labels an unfinished run trains with is refused.
   */
  'runs.delete': { params: z.object({ id, discardReviews: z.boolean().optional() }).strict(), result: {} as { deleted: boolean } },
  'runs.metrics': {
    params: z.object({ id, keys: z.array(z.string().min(1).max(200)).max(200).optional(), afterStep: z.number().int().optional() }).strict(),
    result: [] as MetricPoint[],
  },
  'runs.log': { params: z.object({ id, tail: z.number().int().min(1).max(10000).default(500) }).strict(), result: [] as LogLine[] },
  /** When each step was recorded and its tokens (after `afterStep` when given): charts' wall-time and tokens axes. */
  'runs.timeline': { params: z.object({ id, afterStep: z.number().int().optional() }).strict(), result: [] as StepTimeView[] },
  /** One file of the run's export (the same code as `autodidact export`): metrics.csv, samples.jsonl or completions.parquet. */
  'runs.export': {
    params: z.object({ id, kind: z.enum(EXPORT_KINDS), layout: z.enum(['wide', 'long']).default('wide') }).strict(),
    result: {} as ExportedFile,
  },

  /**
   * The review queue: a run's prompt groups in one step, or across all its steps (no `step`), in
   * step and group order, a page at a time. `confident-mistakes`: a wrong pseudo-label (against
   * the hidden truth) with a majority ratio of at least `confidentAbove`; `low-consensus`: a ratio
   * below `lowConsensusBelow`; `label-changed`: a pseudo-label unlike the prompt's previous draw;
   * `review-label`: groups that trained toward a person's label (a run started from reviews).
   */
  'steps.groups': { params: z.object(groupSelection).extend({ offset: z.number().int().min(0).default(0), limit: z.number().int().min(1).max(1000).default(200) }).strict(), result: {} as GroupPage },
  'steps.group': { params: z.object({ rolloutId: id }).strict(), result: {} as GroupDetail },

  /**
   * Sets a group's review; a `note` given replaces the review's note, none keeps it. An override
   * answers how many of the group's samples agree with its label: 0 warns that a run from this
   * review learns nothing from the prompt unless a new sample reaches the label.
   */
  'reviews.set': {
    params: z
      .object({ rolloutId: id, verdict: z.enum(['agree', 'override']), label: z.string().min(1).max(1000).optional(), note: reviewNote.optional() })
      .strict()
      .refine((p) => p.verdict === 'agree' || p.label !== undefined, { message: 'an override needs a label', path: ['label'] }),
    result: {} as ReviewView & { /** For an override: the group's samples that agree with its label; null for an agreement. */ agreeingSamples: number | null },
  },
  /** Sets (null: removes) the note of a group's review; NOT_FOUND when the group has no review yet. */
  'reviews.note': { params: z.object({ rolloutId: id, note: reviewNote.nullable() }).strict(), result: {} as ReviewView },
  /**
   * Agrees with the pseudo-label of every unreviewed group the selection matches, up to `asOf`
   * (the queue's answer: no group recorded since the person saw the count). Skips groups with no
   * pseudo-label, and groups whose prompt the person reviewed at another step of the run.
   */
  'reviews.agreeAll': {
    params: z.object(groupSelection).extend({ asOf: id }).strict(),
    result: {} as { agreed: number; noLabel: number; reviewedElsewhere: number },
  },
  'reviews.clear': { params: z.object({ rolloutId: id }).strict(), result: {} as { cleared: boolean } },
  'reviews.list': { params: z.object({ runId: id }).strict(), result: [] as ReviewView[] },

  /** An agent run's episodes of one step, by group. */
  'episodes.list': { params: z.object({ runId: id, step: z.number().int().min(0) }).strict(), result: [] as EpisodeSummary[] },
  /** One agent episode (a sample of an agent run) turn by turn, with its skills and each taught reply's Δ per token. */
  'episodes.get': { params: z.object({ sampleId: id }).strict(), result: {} as EpisodeView },
  /** An agent run's skill library, newest first: every word of `query` in the skill's text or task. */
  'skills.list': {
    params: z
      .object({
        runId: id,
        query: z.string().max(500).optional(),
        kind: z.enum(SKILL_KINDS).optional(),
        offset: z.number().int().min(0).default(0),
        limit: z.number().int().min(1).max(500).default(100),
      })
      .strict(),
    result: {} as { skills: SkillView[]; total: number },
  },
  /** A person's new text for a skill; it is marked as theirs. */
  'skills.edit': { params: z.object({ id, text: z.string().trim().min(1, 'a skill needs some text').max(4000, 'a skill of at most 4000 characters') }).strict(), result: {} as SkillView },
  'skills.delete': { params: z.object({ id }).strict(), result: {} as { deleted: boolean } },

  /** A self-verified distillation run's rounds as funnels. */
  'svd.rounds': { params: z.object({ runId: id }).strict(), result: [] as SvdRoundView[] },
  /**
   * A round's candidates with every stage's votes: all, the survivors of the cascade, the SFT set,
   * those a stage rejected (`rejectedAt`: that stage's position only), or survivors whose answer is wrong.
   */
  'svd.candidates': {
    params: z.object({ runId: id, round: z.number().int().min(1), filter: z.enum(SVD_FILTERS).default('all'), rejectedAt: z.number().int().min(0).optional() }).strict(),
    result: [] as SvdCandidateView[],
  },
  /** A person's review of a survivor before its round's SFT: reject keeps it out of the SFT set; null clears it. */
  'svd.review': {
    params: z.object({ candidateId: id, verdict: z.enum(['accept', 'reject']).nullable(), note: z.string().max(2000).nullable().default(null) }).strict(),
    result: {} as SvdCandidateView,
  },
} as const;

export type RequestName = keyof typeof requests;
export type ParamsOf<K extends RequestName> = z.input<(typeof requests)[K]['params']>;
export type ValidParamsOf<K extends RequestName> = z.output<(typeof requests)[K]['params']>;
export type ResultOf<K extends RequestName> = (typeof requests)[K]['result'];
export const REQUEST_CHANNELS = Object.keys(requests) as RequestName[];

// --- event channels -----------------------------------------------------------------------

/** Pushed to every window; live run data is batched to at most ten updates a second per run. */
export interface Events {
  /** A run changed status (started, paused, completed, failed with its error, ...), or its tags. */
  'run.status': { run: RunView };
  'run.progress': { runId: number; progress: RunProgress };
  /** New metric points of a run (one or more steps). */
  'run.metrics': { runId: number; points: MetricPoint[] };
  'run.alert': { runId: number; alert: AlertView };
  /** A step was recorded: its groups (and their samples) can now be read. */
  'run.step': { runId: number; step: number; groups: number; labelAccuracy: number | null };
  'run.log': { runId: number; lines: LogLine[] };
  'datasets.changed': Record<string, never>;
  'models.changed': Record<string, never>;
  'reviews.changed': { runId: number | null; count: number };
  /** A person edited or deleted a skill of a run's library (skills.edit, skills.delete): open views of it reload. */
  'skills.changed': { runId: number; skillId: number; deleted: boolean };
}
export type EventName = keyof Events;
export const EVENT_CHANNELS: EventName[] = ['run.status', 'run.progress', 'run.metrics', 'run.alert', 'run.step', 'run.log', 'datasets.changed', 'models.changed', 'reviews.changed', 'skills.changed'];

// --- the object both transports provide -------------------------------------------------

/** An error a request answers with: a code the UI can act on, and a message for the person. */
export interface ApiErrorShape {
  code: 'BAD_REQUEST' | 'NOT_FOUND' | 'CONFLICT' | 'SETUP' | 'UNAVAILABLE' | 'INTERNAL';
  message: string;
  /** For BAD_REQUEST: each problem with the path of the offending field. */
  issues?: { path: string; message: string }[];
}

export class ApiError extends Error implements ApiErrorShape {
  override name = 'ApiError';
  constructor(
    readonly code: ApiErrorShape['code'],
    message: string,
    readonly issues?: ApiErrorShape['issues'],
  ) {
    super(message);
  }
  toJSON(): ApiErrorShape {
    return { code: this.code, message: this.message, ...(this.issues ? { issues: this.issues } : {}) };
  }
}

/** What the renderer sees as `window.autodidact` (Electron) or gets from the WebSocket client. */
export interface AutodidactApi {
  invoke<K extends RequestName>(channel: K, params: ParamsOf<K>): Promise<ResultOf<K>>;
  /** Listen to an event channel; returns the function that stops listening. */
  on<E extends EventName>(event: E, listener: (payload: Events[E]) => void): () => void;
}

/** The main-process side both transports call: validated dispatch, and one stream of events. */
export interface ApiService {
  /** Validates `params` against the channel's schema and runs its handler; rejects with ApiError. */
  handle(channel: string, params: unknown): Promise<unknown>;
  subscribe(listener: <E extends EventName>(event: E, payload: Events[E]) => void): () => void;
}

// --- the WebSocket wire format (web mode) ------------------------------------------------

export type ClientMessage = { type: 'request'; id: number; channel: string; params: unknown };
export type ServerMessage =
  | { type: 'result'; id: number; result: unknown }
  | { type: 'error'; id: number; error: ApiErrorShape }
  | { type: 'event'; event: EventName; payload: unknown };

/** Electron IPC channel names: one for requests, one for events. */
export const IPC_INVOKE = 'autodidact:invoke';
export const IPC_EVENT = 'autodidact:event';
