// vitest globalSetup: the CLI tests spawn the real bin, which runs the compiled bundle; build it
// first when it is missing or older than the sources, so the tests run what a user runs (and the
// bin's "running the TypeScript sources" note never shows up in their output).
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from '../../../test-support/shared.ts';

export default function setup(): void {
  execFileSync(process.execPath, [path.join(REPO_ROOT, 'apps/cli/build.mjs'), '--if-stale'], { stdio: 'inherit' });
}
