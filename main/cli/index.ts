// The `autodidact` command line: a subcommand dispatcher. Each subcommand lives in its own module
// and declares its flags once; this file only routes, prints help, and maps errors to exit codes
// (0 ok, 1 failure, 2 usage mistake, 130 interrupted).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { EngineError } from '../engine/protocol.ts';
import { type CliCommand, PROGRAM, UsageError, helpText, parseFor } from './args.ts';
import { devicesCommand } from './devices.ts';
import { InputError } from './jsonl.ts';
import { logprobsCommand } from './logprobs.ts';

const COMMANDS: CliCommand[] = [logprobsCommand, devicesCommand].map((c) => c as unknown as CliCommand);

function version(): string {
  const pkg = fileURLToPath(new URL('../../package.json', import.meta.url));
  return (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version: string }).version;
}

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return [
    `usage: ${PROGRAM} <command> [options]`,
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
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
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h') {
    process.stdout.write(overview());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  if (name === 'help') {
    const c = COMMANDS.find((x) => x.name === rest[0]);
    process.stdout.write(c ? helpText(c) : overview());
    return c || rest.length === 0 ? 0 : 2;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    process.stderr.write(`${PROGRAM}: unknown command "${name}" (commands: ${COMMANDS.map((c) => c.name).join(', ')})\n`);
    return 2;
  }
  try {
    const parsed = parseFor(cmd, rest);
    if (!parsed) return 0;
    return await cmd.run(parsed.values, parsed.positionals);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${PROGRAM} ${cmd.name}: ${e.message}\nRun '${PROGRAM} ${cmd.name} --help' for usage.\n`);
      return 2;
    }
    if (e instanceof EngineError && e.code === 'CANCELLED') return 130;
    const message = e instanceof Error ? e.message : String(e);
    process.stderr.write(`${PROGRAM} ${cmd.name}: ${message}\n`);
    // Expected failures (bad input, missing files, unavailable devices) need only their message;
    // for anything else, say how to get the stack for a bug report.
    const expected = e instanceof InputError || (e instanceof EngineError && e.code !== 'ENGINE_ERROR');
    if (process.env.AUTODIDACT_DEBUG && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
    else if (!expected) process.stderr.write('(set AUTODIDACT_DEBUG=1 to print where it happened)\n');
    return 1;
  }
}

// Run when executed directly (`tsx main/cli/index.ts`); bin/autodidact.js imports and calls main().
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2));
}
