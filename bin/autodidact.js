#!/usr/bin/env node
// The `autodidact` command (package.json "bin"): registers tsx so a checkout runs its TypeScript
// sources as they are, then hands over to the command line in main/cli/.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../main/cli/index.ts');
process.exitCode = await main(process.argv.slice(2));
