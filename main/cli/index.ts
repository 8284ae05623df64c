// The `autodidact` command line: a subcommand dispatcher. Each subcommand lives in its own module
// and declares its flags once; this file only routes, prints help, and maps errors to exit codes
// (0 ok, 1 failure, 2 usage mistake, 130 interrupted). A command's name may have two words
// ("datasets import"): the first word then names a group, which alone lists its commands.
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DatabaseError } from '../db/index.ts';
import { EngineError } from '../engine/protocol.ts';
import { ModelFolderError } from '../api/models.ts';
import { ImportError } from '../runs/datasets.ts';
import { RunSetupError } from '../runs/start.ts';
import { ClusterImportError } from '../cluster/import.ts';
import { ClusterFileError } from '../cluster/verl-files.ts';
import { type CliCommand, PROGRAM, UsageError, helpText, parseFor } from './args.ts';
import { clusterExportCommand, clusterImportCommand } from './cluster.ts';
import { datasetsArchiveCommand, datasetsDeleteCommand, datasetsImportCommand, datasetsListCommand, datasetsRestoreCommand } from './datasets.ts';
import { devicesCommand } from './devices.ts';
import { InputError } from './jsonl.ts';
import { logprobsCommand } from './logprobs.ts';
import { modelsAddCommand, modelsListCommand, modelsRemoveCommand } from './models.ts';
import { runCommand } from './run.ts';
import { exportCommand, runsCommand, runsTagCommand, showCommand } from './runs.ts';
import { serveCommand } from './serve.ts';
import { serveModelCommand } from './serve-model.ts';
import { svdExportCommand } from './svd.ts';
import { printable } from './printable.ts';

const COMMANDS: CliCommand[] = [
  runCommand,
  runsCommand,
  runsTagCommand,
  showCommand,
  exportCommand,
  svdExportCommand,
  datasetsImportCommand,
  datasetsListCommand,
  datasetsArchiveCommand,
  datasetsRestoreCommand,
  datasetsDeleteCommand,
  clusterExportCommand,
  clusterImportCommand,
  modelsAddCommand,
  modelsListCommand,
  modelsRemoveCommand,
  logprobsCommand,
  devicesCommand,
  serveCommand,
  serveModelCommand,
].map((c) => c as unknown as CliCommand);

/** The command named by the first one or two words of argv, and the words it used. */
function lookup(words: string[]): { cmd: CliCommand; used: number } | undefined {
  const two = COMMANDS.find((c) => words.length >= 2 && c.name === `${words[0]} ${words[1]}`);
  if (two) return { cmd: two, used: 2 };
  const one = COMMANDS.find((c) => c.name === words[0]);
  return one && { cmd: one, used: 1 };
}

/** The commands of a group ("datasets" → datasets import, datasets list). */
function groupOf(word: string): CliCommand[] {
  return COMMANDS.filter((c) => c.name.startsWith(`${word} `));
}

function listing(commands: CliCommand[]): string[] {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`);
}

function version(): string {
  const pkg = fileURLToPath(new URL('../../package.json', import.meta.url));
  return (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version: string }).version;
}

function overview(): string {
  return [
    `usage: ${PROGRAM} <command> [options]`,
    '',
    'commands:',
    ...listing(COMMANDS),
    '',
    `Run '${PROGRAM} <command> --help' for a command's options.`,
    '',
  ].join('\n');
}

/** Run the command line; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  // A reader that stops early (`| head`) closes the pipe: stop quietly, as Unix tools do. The
  // host's exit hook lets the engine's current session run finish first.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  // Progress and warnings go to stderr: a reader gone from it (`2>&1 | head`) must not end a
  // run in training (what it would have printed is lost; the run is in the database).
  process.stderr.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
  });
  // when-exit (under electron-store's atomically) hooks each signal once and, after its cleanups,
  // sends the signal to the process again: one Ctrl-C reached a command twice, so `run` dropped
  // the step it had been asked to finish and `serve` forced its exit instead of pausing its runs.
  // The commands handle their signals themselves (none is listened to before this point but by
  // libraries); its 'exit' hook (temporary files) stays.
  for (const signal of Object.keys(os.constants.signals)) if (process.listenerCount(signal) > 0) process.removeAllListeners(signal);
  const [name] = argv;
  if (name === undefined || name === '--help' || name === '-h') {
    process.stdout.write(overview());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  if (name === 'help') {
    const found = lookup(argv.slice(1));
    process.stdout.write(found ? helpText(found.cmd) : overview());
    return found || argv.length === 1 ? 0 : 2;
  }
  const found = lookup(argv);
  if (!found) {
    const group = groupOf(name);
    if (group.length) {
      // A group word alone (or with an unknown second word): show what it offers.
      const asked = argv[1] === undefined || argv[1] === '--help' || argv[1] === '-h';
      if (!asked) process.stderr.write(`${PROGRAM}: unknown command "${name} ${argv[1]}"\n`);
      (asked ? process.stdout : process.stderr).write(`commands of ${name}:\n${listing(group).join('\n')}\n`);
      return argv[1] === undefined || !asked ? 2 : 0;
    }
    const names = [...new Set(COMMANDS.map((c) => c.name.split(' ')[0]))];
    process.stderr.write(`${PROGRAM}: unknown command "${name}" (commands: ${names.join(', ')})\n`);
    return 2;
  }
  const { cmd, used } = found;
  const rest = argv.slice(used);
  try {
    const parsed = parseFor(cmd, rest);
    if (!parsed) return 0;
    return await cmd.run(parsed.values, parsed.positionals);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${PROGRAM} ${cmd.name}: ${printable(e.message)}\nRun '${PROGRAM} ${cmd.name} --help' for usage.\n`);
      return 2;
    }
    if (e instanceof EngineError && e.code === 'CANCELLED') return 130;
    // Messages quote files (a malformed line, a column name): never their control characters.
    const message = printable(e instanceof Error ? e.message : String(e));
    process.stderr.write(`${PROGRAM} ${cmd.name}: ${message}\n`);
    // Expected failures (bad input, missing files, unavailable devices) need only their message;
    // for anything else, say how to get the stack for a bug report.
    const expected =
      e instanceof InputError ||
      e instanceof ImportError ||
      e instanceof RunSetupError ||
      e instanceof ClusterImportError ||
      e instanceof ClusterFileError ||
      e instanceof ModelFolderError ||
      (e instanceof DatabaseError && e.code !== 'SQLITE') ||
      (e instanceof EngineError && e.code !== 'ENGINE_ERROR');
    if (process.env.AUTODIDACT_DEBUG && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
    else if (!expected) process.stderr.write('(set AUTODIDACT_DEBUG=1 to print where it happened)\n');
    return 1;
  }
}

// Run when executed directly (`tsx main/cli/index.ts`); bin/autodidact.js imports and calls main().
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2));
}
